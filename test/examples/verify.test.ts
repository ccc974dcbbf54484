// Issue #6: the example's verifier is the independent oracle for the study, so it is checked against
// a JavaScript reference on hand-made rows (clip, cents rounded half away from zero, weekday and
// rush-hour filters, per-company distinct counts) and shown to catch a single wrong cell.
import { describe, expect, it, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance } from '@duckdb/node-api'
import { generate, plan } from '../../examples/ride-sharing/generate.ts'
import { compare, plaintextTotals, verifyResult, queryIdOf, type Expected, type ResultDoc } from '../../examples/ride-sharing/verify.ts'

const QDIR = fileURLToPath(new URL('../../examples/ride-sharing/queries/', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'mpc-verify-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

// [company, pickup (NYC wall time), zone, fare, vehicle]
type Row = [string, string, number, number | null, string]
const ROWS: Row[] = [
  ['a', '2024-03-04 08:10:00', 5, 0.125, 'V1'], // Monday; 12.5 cents → 13
  ['a', '2024-03-04 08:50:00', 5, -3, 'V1'], // clipped to 0
  ['a', '2024-03-04 17:00:00', 263, 900, 'V2'], // clipped to 500
  ['a', '2024-03-09 08:00:00', 5, 10, 'V3'], // Saturday: not a weekday pickup, but a rush-hour fare
  ['a', '2024-03-05 03:00:00', 7, 20, 'V4'], // not rush hour
  ['a', '2024-03-05 08:05:00', 264, 30, 'V5'], // zone out of 1..263: dropped where grouped by zone
  ['b', '2024-03-04 08:20:00', 5, 1.005, 'V1'], // 1.005 * 100 = 100.49999999999999 in doubles → 100
  ['b', '2024-03-04 08:59:59', 5, null, 'V6'], // null fare: skipped in the mean, counted as a trip
  ['b', '2024-03-08 18:30:00', 100, -0.005, 'V6'] // Friday; clip → 0
]

const roundHalfAway = (x: number): number => Math.sign(x) * Math.round(Math.abs(x))
const hourOf = (t: string): number => Number(t.slice(11, 13))
const isWeekday = (t: string): boolean => {
  const d = new Date(`${t.slice(0, 10)}T00:00:00Z`).getUTCDay()
  return d >= 1 && d <= 5
}
const RUSH = [7, 8, 9, 16, 17, 18]

function reference(id: string): Expected {
  const out: Expected = new Map()
  if (id === 'pickups-zone-hour') {
    for (const [, t, z] of ROWS) {
      if (!isWeekday(t) || z < 1 || z > 263) continue
      const k = `${z}|${String(hourOf(t)).padStart(2, '0')}`
      out.set(k, { pickups: Number(out.get(k)?.pickups ?? 0) + 1 })
    }
  } else if (id === 'mean-fare-rush') {
    const acc = new Map<string, { n: number; m: number; cents: number }>()
    for (const [, t, z, f] of ROWS) {
      if (!RUSH.includes(hourOf(t)) || z < 1 || z > 263) continue
      const a = acc.get(String(z)) ?? { n: 0, m: 0, cents: 0 }
      a.n++
      if (f !== null) {
        a.m++
        a.cents += roundHalfAway(Math.min(500, Math.max(0, f)) * 100)
      }
      acc.set(String(z), a)
    }
    for (const [z, a] of acc) out.set(z, { trips: a.n, mean_fare: a.m ? a.cents / a.m / 100 : null })
  } else {
    const sets = new Map<string, Set<string>>()
    for (const [co, t, , , v] of ROWS) {
      if (!RUSH.includes(hourOf(t))) continue
      const k = `${hourOf(t)}|${co}`
      sets.set(k, (sets.get(k) ?? new Set()).add(v))
    }
    for (const [k, s] of sets) {
      const h = k.split('|')[0] as string
      out.set(h, { vehicles: Number(out.get(h)?.vehicles ?? 0) + s.size })
    }
  }
  return out
}

const files = ['a', 'b'].map((co) => join(work, `${co}.parquet`))

beforeAll(async () => {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  for (const [i, co] of ['a', 'b'].entries()) {
    const vals = ROWS.filter((r) => r[0] === co).map(([, t, z, f, v]) => `(TIMESTAMP '${t}', ${z}, ${f === null ? 'NULL' : f}::DOUBLE, '${v}')`)
    await c.run(`COPY (SELECT 'HV000${i}' AS hvfhs_license_num, pickup_datetime, PULocationID::INTEGER AS PULocationID, base_passenger_fare, vehicle_id
      FROM (VALUES ${vals.join(', ')}) v(pickup_datetime, PULocationID, base_passenger_fare, vehicle_id)) TO '${files[i]}' (FORMAT parquet)`)
  }
  c.closeSync()
  db.closeSync()
})

/** A full result document (every cell, row-major) holding the expected values. */
function docFrom(id: string, e: Expected): ResultDoc {
  const zones = Array.from({ length: 263 }, (_, i) => String(i + 1))
  const hours = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0'))
  const dims = id === 'pickups-zone-hour' ? [{ name: 'zone', labels: zones }, { name: 'hour', labels: hours }]
    : id === 'mean-fare-rush' ? [{ name: 'zone', labels: zones }] : [{ name: 'hour', labels: RUSH.map(String) }]
  const keys: string[][] = dims.length === 2 ? zones.flatMap((z) => hours.map((h) => [z, h])) : (dims[0] as { labels: string[] }).labels.map((l) => [l])
  const empty: Record<string, number | null> = id === 'pickups-zone-hour' ? { pickups: 0 } : id === 'mean-fare-rush' ? { trips: 0, mean_fare: null } : { vehicles: 0 }
  return { query: { id }, dims, cells: keys.map((key) => ({ key, values: { ...empty, ...e.get(key.join('|')) } })) }
}

const IDS = ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour']

describe('plaintextTotals', () => {
  it.each(IDS)('%s equals the JavaScript reference on hand-made rows', async (id) => {
    const got = await plaintextTotals(files, id)
    const want = reference(id)
    expect(want.size).toBeGreaterThan(0)
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want))
  })

  it('rounds cents half away from zero after clipping, and skips null fares in the mean', async () => {
    const zone5 = (await plaintextTotals(files, 'mean-fare-rush')).get('5')
    // rush-hour zone 5: 13 + 0 + 1000 (Saturday 10.00) + 100 cents over 4 fares; 5 trips
    expect(zone5).toEqual({ trips: 5, mean_fare: (13 + 0 + 1000 + 100) / 4 / 100 })
    expect((await plaintextTotals(files, 'vehicles-rush-hour')).get('8')).toEqual({ vehicles: 3 + 2 }) // V1 counted by a and by b
  })

  it('takes the query as an id, a query file path or a parsed query', async () => {
    expect(queryIdOf(join(QDIR, 'mean-fare-rush.yaml'))).toBe('mean-fare-rush')
    expect(queryIdOf({ id: 'pickups-zone-hour' })).toBe('pickups-zone-hour')
    expect(queryIdOf('vehicles-rush-hour')).toBe('vehicles-rush-hour')
    expect(() => queryIdOf(join(QDIR, 'nope.yaml'))).toThrow(/not found/)
    await expect(plaintextTotals(files, 'other-query')).rejects.toThrow(/no plaintext reference/)
  })
})

describe('verifyResult (negative controls on generated data)', () => {
  const gen = mkdtempSync(join(tmpdir(), 'mpc-verify-gen-'))
  afterAll(() => rmSync(gen, { recursive: true, force: true }))
  let gfiles: string[] = []
  beforeAll(async () => {
    const p = plan(3, 3000, gen)
    await generate(p, 9)
    gfiles = p.map((x) => x.file)
  })

  it.each(IDS)('%s: the right table passes; one wrong cell, a missing cell or a wrong query fails', async (id) => {
    const qfile = join(QDIR, `${id}.yaml`)
    const doc = docFrom(id, await plaintextTotals(gfiles, qfile))
    expect(await verifyResult(gfiles, qfile, doc)).toEqual([])

    const agg = id === 'pickups-zone-hour' ? 'pickups' : id === 'mean-fare-rush' ? 'mean_fare' : 'vehicles'
    const cell = doc.cells.find((x) => Number(x.values[agg]) > 0) as ResultDoc['cells'][number]
    const right = cell.values[agg] as number
    cell.values[agg] = agg === 'mean_fare' ? right * (1 + 1e-7) : right + 1
    const bad = await verifyResult(gfiles, qfile, doc)
    expect(bad).toHaveLength(1)
    expect(bad[0]).toContain(`cell ${cell.key.join('|')} ${agg}`)
    cell.values[agg] = agg === 'mean_fare' ? right * (1 + 1e-12) : right // within the 1e-9 relative tolerance
    expect(await verifyResult(gfiles, qfile, doc)).toEqual([])

    const short = { ...doc, cells: doc.cells.filter((x) => x !== cell) }
    expect((await verifyResult(gfiles, qfile, short)).join('\n')).toMatch(/missing|cells, the dims give/)
    expect(await verifyResult(gfiles, 'other-id', doc)).toEqual([`result is for query ${id}, expected other-id`])
  })

  it('a zero where the truth is not zero, and null vs a number, are mismatches', () => {
    const e: Expected = new Map([['5', { trips: 2, mean_fare: 12.5 }]])
    const doc = docFrom('mean-fare-rush', new Map())
    expect(compare(doc, e).length).toBe(2)
  })
})
