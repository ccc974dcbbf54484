// Issue 14 §1 through the real CLI, every agent a separate OS process on 127.0.0.1: the probes a
// buyer could build from a setting it chooses — max_rows_per_provider (binary search on one
// provider's count), out-of-domain values, NULLs — produce runs that succeed and look identical to
// the buyer whichever way the target provider's data goes (same exit code, same event types and
// frame sizes, same result shape; timing excepted). A query below a provider's floor is refused
// with row_bound; a missing column or CSV is a rejection before signing, never an abort after it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from '../data/fixtures.ts'
import { closeEngine } from '../../src/data/compute.ts'
import { mkdirSync } from 'node:fs'
import { makeDataCluster, tripsCsv, QUERY, readResult, type DataCluster, type Trip } from '../helpers/data-cluster.ts'

const FLOOR = 5

/** Two versions of p1's data that differ only where the probe looks. */
function variants(base: Trip[]): Record<string, { a: string; b: string }> {
  const zone1 = base.filter((t) => t.zone !== 1)
  return {
    // count in cell (zone 1, hour 03): 2 (below t) or 40 (above t): before issue 14, an abort exactly when above
    max_rows: {
      a: tripsCsv([...zone1, ...Array.from({ length: 2 }, () => ({ zone: 1, hour: 3, fare: 10 }))]),
      b: tripsCsv([...zone1, ...Array.from({ length: 40 }, () => ({ zone: 1, hour: 3, fare: 10 }))])
    },
    // a row far outside the zone domain (out_of_domain: fail used to abort on it and log the value)
    out_of_domain: { a: tripsCsv(base), b: tripsCsv(base) + '987654,2024-03-01 10:15:00,31337.77,HV0001\n' },
    // a NULL fare and a value that does not convert (nulls: fail used to abort on them)
    nulls: { a: tripsCsv(base), b: tripsCsv(base) + '2,2024-03-01 10:15:00,,HV0001\n2,2024-03-01 11:15:00,not-a-fare,HV0001\n' }
  }
}

const QUERIES: Record<string, (providers: string[]) => string> = {
  max_rows: (ps) => QUERY(ps).replace('max_rows_per_provider: 1000000', `max_rows_per_provider: ${FLOOR}`).replace('id: zones-by-hour', 'id: probe-max-rows') + 'filter: "zone = 1"\n',
  out_of_domain: (ps) => QUERY(ps).replace('id: zones-by-hour', 'id: probe-domain'),
  nulls: (ps) => QUERY(ps).replace('id: zones-by-hour', 'id: probe-nulls')
}

interface Ev { type: string; [k: string]: unknown }

/** What the buyer observes of a run, timing and session ids removed. */
function observed(stdout: string): string[] {
  const events = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev)
  return events.map((e) => {
    const { type, phase, state, decision, bytes, cells, totalCells, peer, provider } = e as Record<string, unknown>
    return JSON.stringify({ type, phase, state, decision, bytes, cells, totalCells, peer, provider })
  }).sort()
}

function auditKinds(home: string): string[] {
  if (!existsSync(join(home, 'audit.jsonl'))) return []
  return readFileSync(join(home, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { kind: string }).kind)
}

describe('probes on one provider\'s data look the same to the buyer either way (issue 14 §1)', () => {
  let dc: DataCluster
  let csvPath: string
  beforeAll(async () => {
    dc = await makeDataCluster(3, 60)
    for (const p of dc.providers) {
      const home = dc.cluster.byName(p).home
      const pol = readFileSync(join(home, 'policy.yaml'), 'utf8')
      writeFileSync(join(home, 'policy.yaml'), pol.replace('    deny_columns: [license]\n', `    deny_columns: [license]\n    max_rows_floor: ${FLOOR}\n`))
      await dc.cluster.serve(p)
    }
    csvPath = join(dc.cluster.byName('p1').home, 'trips.csv')
  }, 120_000)
  afterAll(async () => dc?.cluster.teardown())

  it.each(['max_rows', 'out_of_domain', 'nulls'])('%s probe: both data variants succeed with the same exit code, events, frame sizes and result shape', async (probe) => {
    const v = variants(dc.data[0] as Trip[])[probe] as { a: string; b: string }
    const qFile = join(dc.dir, `${probe}.yaml`)
    writeFileSync(qFile, (QUERIES[probe] as (ps: string[]) => string)(dc.providers))
    const seen: Array<{ code: number | null; events: string[]; shape: unknown; stderr: string; stdout: string }> = []
    for (const which of ['a', 'b'] as const) {
      writeFileSync(csvPath, v[which])
      const out = join(dc.dir, `${probe}-${which}.json`)
      const r = await dc.cluster.cli('city', ['--json', 'query', 'run', qFile, '--out', out, '--timeout', '60'])
      const doc = existsSync(out) ? readResult(out) : null
      seen.push({ code: r.code, events: observed(r.stdout), shape: doc && { dims: doc.dims, keys: doc.cells.map((c) => c.key), values: doc.cells.map((c) => Object.keys(c.values)) }, stderr: r.stderr, stdout: r.stdout })
    }
    const [a, b] = seen as [typeof seen[0], typeof seen[0]]
    expect(a.code, a.stderr).toBe(0)
    expect(b.code, b.stderr).toBe(0)
    expect(b.events).toEqual(a.events)
    expect(a.events.some((e) => e.includes('"progress"'))).toBe(true) // frame sizes are compared, not absent
    expect(b.shape).toEqual(a.shape)
    // nothing of the hostile values reaches the buyer
    expect(b.stdout + b.stderr).not.toMatch(/987654|31337|not-a-fare/)
    if (probe === 'max_rows') {
      // the clamp bound in variant b: p1 contributes min(40, t) = t to the cell total, not 40 and not an abort
      const cells = readResult(join(dc.dir, 'max_rows-b.json')).cells
      const total = cells.reduce((s, c) => s + (c.values.pickups ?? 0), 0)
      const others = dc.data.slice(1).flat().filter((t) => t.zone === 1)
      const perCell = new Map<string, number>()
      for (const t of others) perCell.set(String(t.hour).padStart(2, '0'), (perCell.get(String(t.hour).padStart(2, '0')) ?? 0) + 1)
      const p1 = new Map<string, number>([['03', 40]])
      // every cell: Σ over providers of min(count, t) (the other providers' cells are below t here)
      let want = 0
      for (let h = 0; h < 24; h++) {
        const k = String(h).padStart(2, '0')
        want += Math.min(p1.get(k) ?? 0, FLOOR) + Math.min(perCell.get(k) ?? 0, FLOOR)
      }
      expect(total).toBe(want)
    }
  }, 240_000)

  it('the provider\'s log and serve output hold no value of the data and no cleaning count', async () => {
    const home = dc.cluster.byName('p1').home
    const log = readFileSync(join(home, 'logs', 'agent.log'), 'utf8')
    expect(log).not.toMatch(/987654|31337|not-a-fare|outside the group_by|NULL values/)
    expect(auditKinds(home).filter((k) => k === 'abort')).toHaveLength(0)
  })

  it('a max_rows_per_provider below a provider\'s floor is refused with row_bound before anything is computed', async () => {
    const qFile = join(dc.dir, 'below.yaml')
    writeFileSync(qFile, QUERIES.max_rows?.(dc.providers).replace(`max_rows_per_provider: ${FLOOR}`, `max_rows_per_provider: ${FLOOR - 1}`).replace('probe-max-rows', 'probe-below') ?? '')
    const before = auditKinds(dc.cluster.byName('p1').home).filter((k) => k === 'certificate').length
    const r = await dc.cluster.cli('city', ['--json', 'query', 'run', qFile, '--out', join(dc.dir, 'below.json')])
    expect(r.code).toBe(3)
    expect(r.stdout + r.stderr).toMatch(/row_bound|below this provider's floor of 5/)
    expect(auditKinds(dc.cluster.byName('p1').home).filter((k) => k === 'certificate')).toHaveLength(before)
  })

  it.each([
    ['a missing CSV', (home: string) => writeFileSync(join(home, 'config.yaml'), readFileSync(join(home, 'config.yaml'), 'utf8').replace('path: trips.csv', 'path: gone.csv')), /dataset "trips" is configured at p2 but cannot be read there/],
    ['a missing column', (home: string) => {
      writeFileSync(join(home, 'config.yaml'), readFileSync(join(home, 'config.yaml'), 'utf8').replace('fare: DOUBLE', 'fare_usd: DOUBLE'))
      writeFileSync(join(home, 'trips.csv'), readFileSync(join(home, 'trips.csv'), 'utf8').replace('zone,pickup_datetime,fare,', 'zone,pickup_datetime,fare_usd,'))
    }, /column "fare" \(used in aggregate "fare"\) is not in dataset "trips" at p2/]
  ])('%s at one provider is a rejection before signing (exit 3, no certificate, no abort)', async (_n, breakIt, re) => {
    const home = dc.cluster.byName('p2').home
    const cfg = readFileSync(join(home, 'config.yaml'), 'utf8')
    const csv = readFileSync(join(home, 'trips.csv'), 'utf8')
    await dc.cluster.stop('p2')
    breakIt(home)
    await dc.cluster.serve('p2')
    const certs = auditKinds(home).filter((k) => k === 'certificate').length
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', join(dc.dir, 'broken.json')])
    await dc.cluster.stop('p2')
    writeFileSync(join(home, 'config.yaml'), cfg)
    writeFileSync(join(home, 'trips.csv'), csv)
    await dc.cluster.serve('p2')
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(re)
    const kinds = auditKinds(home)
    expect(kinds.filter((k) => k === 'certificate')).toHaveLength(certs)
    expect(kinds.filter((k) => k === 'abort')).toHaveLength(0)
  }, 120_000)

  it('a failure after signing that no metadata could foresee (a corrupt second file of a glob) aborts with local_error and the fixed detail, never a substitute vector', async () => {
    const home = dc.cluster.byName('p1').home
    const cfgPath = join(home, 'config.yaml')
    const cfg = readFileSync(cfgPath, 'utf8')
    mkdirSync(join(home, 'parts'), { recursive: true })
    writeFileSync(csvPath, tripsCsv(dc.data[0] as Trip[]))
    await sql(`COPY (SELECT * FROM read_csv('${csvPath}', header = true, columns = {'zone': 'INTEGER', 'pickup_datetime': 'TIMESTAMP', 'fare': 'DOUBLE', 'license': 'VARCHAR'})) TO '${join(home, 'parts', 'a.parquet')}' (FORMAT parquet)`)
    await closeEngine()
    writeFileSync(join(home, 'parts', 'b.parquet'), 'PAR1 this is not a parquet file, as after a disk error PAR1')
    await dc.cluster.stop('p1')
    writeFileSync(cfgPath, cfg.replace(/trips:\n(\s+)path: trips\.csv\n\s+format: csv\n\s+columns:\n(\s+\w+: \w+\n)+/, 'trips:\n$1path: parts/*.parquet\n$1format: parquet\n'))
    expect(readFileSync(cfgPath, 'utf8')).toContain('parts/*.parquet')
    await dc.cluster.serve('p1')
    const r = await dc.cluster.cli('city', ['--json', 'query', 'run', dc.queryFile, '--out', join(dc.dir, 'corrupt.json'), '--timeout', '60'])
    const served = await dc.cluster.stop('p1')
    writeFileSync(cfgPath, cfg)
    await dc.cluster.serve('p1')
    expect(r.code, r.stderr).toBe(4)
    expect(existsSync(join(dc.dir, 'corrupt.json'))).toBe(false)
    expect(r.stdout + r.stderr).toMatch(/local_error/)
    expect(r.stdout + r.stderr).toContain('the provider could not compute its vector')
    // neither the buyer nor p1's own log sees the engine's message (it may quote the data); p1's log has a fixed category
    expect(r.stdout + r.stderr).not.toMatch(/b\.parquet|PAR1|Invalid Input|IO Error/)
    const log = readFileSync(join(home, 'logs', 'agent.log'), 'utf8') + (served?.stdout ?? '') + (served?.stderr ?? '')
    expect(log).toMatch(/could not compute this provider's vector: (the source could not be read|an error of the local data engine);/)
    expect(log).not.toMatch(/b\.parquet|not a parquet file|Invalid Input/)
    expect(auditKinds(home)).toContain('abort')
  }, 120_000)
})
