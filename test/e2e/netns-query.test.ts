// Issue #8, multi-host: a buyer and 3 providers each in its own network namespace (veth pairs and
// a bridge created and removed here). A query succeeds across them; a link cut mid-run aborts the
// run cleanly naming the unreachable provider, with no result file; restored 25 s later, the next run succeeds.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLab, netnsUnavailable, type NetnsLab } from '../helpers/netns.ts'
import { makeDataCluster, expected, readResult, type DataCluster } from '../helpers/data-cluster.ts'
import { spawnCli, collect } from '../helpers/cli.ts'

const why = netnsUnavailable()
if (why) console.warn(`skipping network-namespace query tests: ${why}`)

describe.skipIf(why != null)('query run across network namespaces', () => {
  let lab: NetnsLab
  let dc: DataCluster
  beforeAll(async () => {
    lab = createLab(4, 232)
    dc = await makeDataCluster(3, 300, lab.hosts)
    for (const p of dc.providers) await dc.cluster.serve(p)
  }, 120_000)
  afterAll(async () => {
    await dc?.cluster.teardown()
    lab?.teardown()
  })

  it('succeeds across hosts; a link cut mid-run aborts naming the peer; restored, it succeeds again', async () => {
    const out = join(dc.dir, 'ns.json')
    const ok = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out])
    expect(ok.code, ok.stderr).toBe(0)
    const doc = readResult(out)
    const want = expected(dc.data)
    for (const c of doc.cells) expect(c.values.pickups).toBe(want.get(c.key.join('|'))?.pickups ?? 0)

    // a query big enough (4M values per provider) that the cut lands while vectors stream
    const big = join(dc.dir, 'big.yaml')
    writeFileSync(big, readFileSync(dc.queryFile, 'utf8')
      .replace('id: zones-by-hour', 'id: big')
      .replace('{ name: zone, kind: int_range, column: zone, min: 1, max: 5 }', '{ name: zone, kind: int_range, column: zone, min: 1, max: 83333 }')
      .replace(/timeouts:.*/, 'timeouts: { negotiate_s: 10, compute_s: 6, confirm_s: 5 }'))
    const victim = lab.hosts[3]!
    const bigOut = join(dc.dir, 'big.json')
    const run = spawnCli(['--home', dc.cluster.byName('city').home, 'query', 'run', big, '--out', bigOut], { netns: lab.hosts[0]!.ns })
    const done = collect(run, 90_000)
    let cut = false
    run.stderr?.on('data', (d: Buffer) => {
      if (!cut && d.toString().includes('agreement certified')) {
        cut = true
        lab.cut(victim)
      }
    })
    const r = await done
    expect(cut).toBe(true)
    expect(r.code, r.stderr).toBe(5)
    expect(r.stderr).toContain(dc.cluster.byName('p3').peerId)
    expect(existsSync(bigOut)).toBe(false)

    // a partition that lasts: the connections that sent into it back off (TCP retransmission, seconds), so
    // after it heals the next run must not queue behind them (serve hangs up a peer that went silent). Without
    // that, the run below missed its 10 s cross-check deadline (run once with this wait, and once in CI under load)
    await new Promise((r) => setTimeout(r, 25_000))
    lab.restore(victim)
    const again = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', join(dc.dir, 'ns2.json'), '--retry', '3'])
    expect(again.code, again.stderr).toBe(0)
  }, 240_000)
})
