// Issues #3/#4/#5 acceptance through the real CLI, every agent a separate OS process on 127.0.0.1:
// a buyer and 3 (and 5) serving providers reading real CSV files; the result equals the plaintext
// sum; a policy rejection exits 3 with no computation; each deviating agent (test-only entry
// point) aborts the run with the right reason and accused peer, and the honest agents keep serving.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, QUERY, type DataCluster } from '../helpers/data-cluster.ts'
import { expectPlaintextTotals } from '../helpers/expect-result.ts'

function auditEntries(home: string): Array<{ kind: string; data: unknown }> {
  if (!existsSync(join(home, 'audit.jsonl'))) return []
  return readFileSync(join(home, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; data: unknown })
}

function auditKinds(home: string): string[] {
  if (!existsSync(join(home, 'audit.jsonl'))) return []
  return readFileSync(join(home, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { kind: string }).kind)
}

// One buyer + 3 providers for the honest runs and the deviating ones: the homes are set up once; each
// describe starts and stops its own serving processes.
let three: DataCluster
beforeAll(async () => {
  three = await makeDataCluster(3)
})
afterAll(async () => three?.cluster.teardown())

describe('query run: 1 buyer + 3 providers', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = three
    for (const p of dc.providers) await dc.cluster.serve(p)
  })
  afterAll(async () => {
    for (const p of dc?.providers ?? []) await dc.cluster.stop(p)
  })

  it('the buyer gets exactly the plaintext totals; every party audited the certificate', async () => {
    const out = join(dc.dir, 'out.json')
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out, '--timeout', '60'])
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    expectPlaintextTotals(dc, out)
    const prov = JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8')) as { certificate: unknown; session: string }
    expect(prov.certificate).toBeTruthy()
    for (const p of dc.providers) {
      const kinds = auditKinds(dc.cluster.byName(p).home)
      expect(kinds).toContain('certificate')
      expect(kinds).toContain('receipt')
      const v = await dc.cluster.cli(p, ['audit', 'verify'])
      expect(v.code, v.stderr).toBe(0)
    }
    expect(auditKinds(dc.cluster.byName('city').home)).toContain('outcome')
  })

  it('--json gives NDJSON events ending in a result event', async () => {
    const out = join(dc.dir, 'out2.csv')
    const r = await dc.cluster.cli('city', ['--json', 'query', 'run', dc.queryFile, '--out', out, '--format', 'csv'])
    expect(r.code, r.stderr).toBe(0)
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { v: number; type: string })
    for (const e of events) expect(e.v).toBe(1)
    expect(events.at(-1)?.type).toBe('result')
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe('zone,hour,pickups,fare')
    // progress counts cells of the query (here 5 zones × 24 hours), not vector values (2 slots per cell + canaries)
    const progress = events.filter((e): e is { v: number; type: string; cells: number; totalCells: number } => e.type === 'progress')
    expect(progress.length).toBeGreaterThan(0)
    for (const e of progress) expect(e.totalCells).toBe((events.at(-1) as unknown as { cells: number }).cells)
    expect(progress.at(-1)?.cells).toBe(progress.at(-1)?.totalCells)
  })

  it('a query the policies refuse exits 3 naming every provider and reason; nothing is computed', async () => {
    const q = join(dc.dir, 'denied.yaml')
    writeFileSync(q, QUERY(dc.providers, "filter: \"license = 'HV0001'\"\n"))
    const out = join(dc.dir, 'denied.json')
    const before = dc.providers.map((p) => auditKinds(dc.cluster.byName(p).home).filter((k) => k === 'certificate').length)
    const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', out])
    expect(r.code).toBe(3)
    for (const p of dc.providers) expect(r.stderr).toContain(p)
    expect(r.stderr).toMatch(/license/)
    expect(existsSync(out)).toBe(false)
    const after = dc.providers.map((p) => auditKinds(dc.cluster.byName(p).home).filter((k) => k === 'certificate').length)
    expect(after).toEqual(before)
  })
})

describe('query run: 1 buyer + 5 providers', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = await makeDataCluster(5, 200)
    for (const p of dc.providers) await dc.cluster.serve(p)
  })
  afterAll(async () => dc?.cluster.teardown())

  it('the result equals the plaintext sum', async () => {
    const out = join(dc.dir, 'out5.json')
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out])
    expect(r.code, r.stderr).toBe(0)
    expectPlaintextTotals(dc, out)
  })
})

describe('query run: deviating agents (test-only entry point)', () => {
  let dc: DataCluster
  beforeAll(() => {
    dc = three
  })

  /** `mpc-agent evidence verify` on a bundle: its exit code and verdict line. */
  async function verifyEvidence(file: string): Promise<{ code: number | null; verdict: string }> {
    const v = await dc.cluster.cli('city', ['evidence', 'verify', file])
    return { code: v.code, verdict: v.stdout.split('\n')[0]?.split(': ').at(-1) ?? '' }
  }

  async function withDeviant(deviation: string | null, buyerDeviation?: string): Promise<{ code: number | null; stderr: string; out: string }> {
    const [p1, p2, p3] = dc.providers as [string, string, string]
    await dc.cluster.serve(p1)
    await dc.cluster.serve(p2)
    await dc.cluster.serve(p3, [], deviation ? { deviant: deviation } : {})
    const out = join(dc.dir, `dev-${deviation ?? buyerDeviation}.json`)
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out], { deviant: buyerDeviation, timeoutMs: 90_000 })
    // the honest providers are still serving after the abort
    for (const p of [p1, p2]) expect(dc.cluster.byName(p).proc?.exitCode).toBe(null)
    for (const p of dc.providers) await dc.cluster.stop(p)
    expect(existsSync(out)).toBe(false)
    return { code: r.code, stderr: r.stderr, out }
  }

  it('check 5: a provider with a wrong pair key → exit 4, key_confirmation_failed, that provider named in a dispute (evidence verify: dispute)', async () => {
    const r = await withDeviant('provider:wrong-pair-key')
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/key_confirmation_failed/)
    expect(r.stderr).toMatch(/dispute between/)
    expect(r.stderr).toContain(dc.cluster.byName('p3').peerId)
    expect(await verifyEvidence(`${r.out}.evidence.json`)).toEqual({ code: 0, verdict: 'dispute' })
  })

  it('check 6: a wrong mask → exit 4, canary_nonzero, no result', async () => {
    const r = await withDeviant('provider:wrong-mask')
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/canary_nonzero/)
    expect(await verifyEvidence(`${r.out}.evidence.json`)).toEqual({ code: 0, verdict: 'unattributed' })
  })

  it('check 8: a provider silent mid-run → exit 5 naming it', async () => {
    const q = join(dc.dir, 'fast.yaml')
    writeFileSync(q, readFileSync(dc.queryFile, 'utf8').replace(/timeouts:.*/, 'timeouts: { negotiate_s: 5, compute_s: 3, confirm_s: 3 }'))
    const [p1, p2, p3] = dc.providers as [string, string, string]
    await dc.cluster.serve(p1)
    await dc.cluster.serve(p2)
    await dc.cluster.serve(p3, [], { deviant: 'provider:silent-stream' })
    const r = await dc.cluster.cli('city', ['--json', 'query', 'run', q, '--out', join(dc.dir, 'silent.json')])
    for (const p of dc.providers) await dc.cluster.stop(p)
    expect(r.code).toBe(5)
    // the abort came after the certificate: the one end event carries the session (issue 17)
    const end = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { type: string; session: string | null }
    expect(end.type).toBe('abort')
    expect(end.session).toMatch(/^[0-9a-f]{64}$/)
    expect(r.stderr).toContain(dc.cluster.byName('p3').peerId)
    expect(r.stderr).toMatch(/no answer from/)
    expect(await verifyEvidence(join(dc.dir, 'silent.json.evidence.json'))).toEqual({ code: 0, verdict: 'silence' })
  })

  it('check 7: a buyer that drops a vector from the inclusion list is accused by the provider → exit 4, proven by its signed INCLUSION', async () => {
    const r = await withDeviant(null, 'buyer:drop-vector')
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/inclusion_mismatch/)
    const kinds = dc.providers.flatMap((p) => auditKinds(dc.cluster.byName(p).home))
    expect(kinds).toContain('abort')
    // the victim's bundle proves the buyer's fault to anyone (exit 0, verdict proven); so does the
    // deviant buyer's own bundle, which embeds the victim's signed accusation as its cause
    const victim = dc.providers.map((p) => auditEntries(dc.cluster.byName(p).home).filter((e) => e.kind === 'abort').at(-1))
      .find((e) => (e?.data as { accused?: string } | undefined)?.accused === dc.cluster.byName('city').peerId)
    expect(victim).toBeDefined()
    expect(await verifyEvidence((victim?.data as { evidence_file: string }).evidence_file)).toEqual({ code: 0, verdict: 'proven' })
    expect(await verifyEvidence(`${r.out}.evidence.json`)).toEqual({ code: 0, verdict: 'proven' })
  })

  it('an unreachable provider → exit 5 naming it, with --retry attempts', async () => {
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--retry', '1', '--out', join(dc.dir, 'unreach.json')])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/p1|p2|p3/)
    expect(r.stderr).toMatch(/unreachable/)
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('mpc-agent:'))).toHaveLength(1)
  })
})
