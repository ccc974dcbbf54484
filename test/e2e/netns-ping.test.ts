// Multi-host smoke: agents on separate network namespaces reach each other; a cut link makes a
// peer unreachable (exit 5) and restoring it heals. The full query-level partition test lives in
// test/e2e/netns.test.ts once the masked sum runs end to end.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { makeCluster, type Cluster } from '../helpers/agents.ts'
import { createLab, netnsUnavailable, type NetnsLab } from '../helpers/netns.ts'

const why = netnsUnavailable()
if (why) console.warn(`skipping network-namespace tests: ${why}`)

describe.skipIf(why != null)('agents on separate network namespaces', () => {
  let lab: NetnsLab
  let c: Cluster
  beforeAll(async () => {
    lab = createLab(3)
    c = await makeCluster(lab.hosts.map((h, i) => ({ name: `n${i}`, role: 'provider' as const, netns: { ns: h.ns, ip: h.ip } })))
    await Promise.all(['n0', 'n1', 'n2'].map((n) => c.serve(n)))
  })
  afterAll(async () => {
    await c?.teardown()
    lab?.teardown()
  })

  it('ping across namespaces, then a cut link is unreachable (exit 5), then restored', async () => {
    const ok = await c.cli('n0', ['ping', 'n1', '--count', '1'])
    expect(ok.code, ok.stderr).toBe(0)
    lab.cut(lab.hosts[1]!)
    const cut = await c.cli('n0', ['ping', 'n1', '--count', '1'], { timeoutMs: 30_000 })
    expect(cut.code).toBe(5)
    expect(cut.stderr).toMatch(/n1.*unreachable/)
    lab.restore(lab.hosts[1]!)
    const healed = await c.cli('n2', ['ping', 'n1', '--count', '1'])
    expect(healed.code, healed.stderr).toBe(0)
  })
})
