// Issue #3/#7: a provider in manual approval mode holds the proposal until its operator decides
// through the running serve's control socket (`mpc-agent approve|reject ID`); the decision is signed
// and audited as usual. Approve → the run completes; reject → exit 3 naming the operator's refusal.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { readFileSync, writeFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'
import { spawnCli, collect } from '../helpers/cli.ts'

describe('manual approval through the control socket', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = await makeDataCluster(3, 100)
    const p1 = dc.cluster.byName('p1').home
    writeFileSync(join(p1, 'policy.yaml'), readFileSync(join(p1, 'policy.yaml'), 'utf8').replace('approval: auto', 'approval: manual'))
    for (const p of dc.providers) await dc.cluster.serve(p)
  }, 120_000)
  afterAll(async () => dc?.cluster.teardown())

  async function pendingId(): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const r = await dc.cluster.cli('p1', ['--json', 'approve'])
      const list = r.code === 0 ? (JSON.parse(r.stdout) as Array<{ id: string }>) : []
      if (list[0]) return list[0].id
      await new Promise((res) => setTimeout(res, 200))
    }
    throw new Error('no proposal became pending')
  }

  it('the control socket is private (0600)', () => {
    expect(statSync(join(dc.cluster.byName('p1').home, 'control.sock')).mode & 0o777).toBe(0o600)
  })

  it('approve: the run completes', async () => {
    const run = spawnCli(['--home', dc.cluster.byName('city').home, 'query', 'run', dc.queryFile, '--out', join(dc.dir, 'a.json')])
    const done = collect(run, 60_000)
    const id = await pendingId()
    const a = await dc.cluster.cli('p1', ['approve', id.slice(0, 12)])
    expect(a.code, a.stderr).toBe(0)
    const r = await done
    expect(r.code, r.stderr).toBe(0)
  })

  it('reject: exit 3, the provider named with the operator\'s refusal, audited', async () => {
    const q = join(dc.dir, 'q2.yaml')
    writeFileSync(q, readFileSync(dc.queryFile, 'utf8').replace('id: zones-by-hour', 'id: second'))
    const run = spawnCli(['--home', dc.cluster.byName('city').home, 'query', 'run', q, '--out', join(dc.dir, 'b.json')])
    const done = collect(run, 60_000)
    const id = await pendingId()
    expect((await dc.cluster.cli('p1', ['reject', id])).code).toBe(0)
    const r = await done
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/p1.*did not approve/)
    const audit = readFileSync(join(dc.cluster.byName('p1').home, 'audit.jsonl'), 'utf8')
    expect(audit).toContain('operator_rejected')
    const none = await dc.cluster.cli('p1', ['approve', 'deadbeefdeadbeef'])
    expect(none.code).toBe(2)
  })
})
