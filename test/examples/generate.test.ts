// Issue #6: the synthetic TLC-schema trips are deterministic, well-formed, and shaped like the real
// thing (market shares, rush-hour peaks, zones 1-263); a real TLC file splits by licence.
import { describe, expect, it, beforeAll, afterAll } from 'vitest'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api'
import { generate, plan, splitTlc, zoneOrder } from '../../examples/ride-sharing/generate.ts'

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex')
const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mpc-gen-'))
  dirs.push(d)
  return d
}

let db: DuckDBInstance
let c: DuckDBConnection
const one = async (sql: string): Promise<unknown> => (await c.runAndReadAll(sql)).getRows()[0]?.[0]

beforeAll(async () => {
  db = await DuckDBInstance.create(':memory:')
  c = await db.connect()
})
afterAll(() => {
  c.closeSync()
  db.closeSync()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('plan', () => {
  it('allows 2..20 companies and refuses the rest', () => {
    expect(plan(2, 100, '/x')).toHaveLength(2)
    expect(plan(20, 100, '/x')).toHaveLength(20)
    for (const k of [0, 1, 21, 2.5]) expect(() => plan(k, 100, '/x')).toThrow(/between 2 and 20/)
  })

  it('uses the TLC licence numbers first, then synthetic ones; shares decrease and sum to 1', () => {
    const p = plan(6, 100_000, '/x')
    expect(p.map((x) => x.license)).toEqual(['HV0003', 'HV0005', 'HV0002', 'HV0004', 'HV0006', 'HV0007'])
    expect(p.map((x) => x.name)).toEqual(['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'])
    expect(p.reduce((a, x) => a + x.share, 0)).toBeCloseTo(1, 12)
    for (let i = 1; i < p.length; i++) expect((p[i] as { trips: number }).trips).toBeLessThan((p[i - 1] as { trips: number }).trips)
    expect(new Set(p.map((x) => x.base)).size).toBe(6)
  })
})

describe('zoneOrder', () => {
  it('is a permutation of zones 1-263, busy zones first, different per company, fixed per seed', () => {
    const a = zoneOrder(7, 0)
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 263 }, (_, i) => i + 1))
    expect(a.slice(0, 10)).toContain(132)
    expect(zoneOrder(7, 0)).toEqual(a)
    expect(zoneOrder(7, 1)).not.toEqual(a)
    expect(zoneOrder(8, 0)).not.toEqual(a)
  })
})

describe('generate', () => {
  it('same seed → byte-identical files; another seed → other rows', async () => {
    const [a, b, d] = [tmp(), tmp(), tmp()]
    await generate(plan(3, 2000, a), 11)
    await generate(plan(3, 2000, b), 11)
    await generate(plan(3, 2000, d), 12)
    for (const n of ['alpha', 'beta', 'gamma']) expect(sha(join(a, `${n}.parquet`))).toBe(sha(join(b, `${n}.parquet`)))
    const diff = Number(await one(`SELECT count(*) FROM (SELECT * FROM '${join(a, 'alpha.parquet')}' EXCEPT ALL SELECT * FROM '${join(d, 'alpha.parquet')}')`))
    expect(diff).toBeGreaterThan(1000)
  })

  it('writes the TLC HVFHV schema with sane values', async () => {
    const dir = tmp()
    const p = plan(3, 4000, dir)
    await generate(p, 5)
    const f = join(dir, 'beta.parquet')
    const cols = (await c.runAndReadAll(`DESCRIBE SELECT * FROM '${f}'`)).getRows().map((r) => `${String(r[0])}:${String(r[1])}`)
    expect(cols).toEqual([
      'hvfhs_license_num:VARCHAR', 'dispatching_base_num:VARCHAR', 'pickup_datetime:TIMESTAMP', 'dropoff_datetime:TIMESTAMP',
      'PULocationID:INTEGER', 'DOLocationID:INTEGER', 'trip_miles:DOUBLE', 'trip_time:BIGINT', 'base_passenger_fare:DOUBLE', 'vehicle_id:VARCHAR'
    ])
    const row = (await c.runAndReadAll(`SELECT count(*), count(DISTINCT hvfhs_license_num), min(hvfhs_license_num),
      min(PULocationID), max(PULocationID), min(DOLocationID), max(DOLocationID),
      min(pickup_datetime)::VARCHAR, max(pickup_datetime)::VARCHAR, bool_and(dropoff_datetime > pickup_datetime),
      bool_and(trip_time = epoch(dropoff_datetime - pickup_datetime)), min(trip_miles), min(base_passenger_fare),
      count(*) FILTER (WHERE vehicle_id IS NULL)
      FROM '${f}'`)).getRows()[0] as unknown[]
    expect(Number(row[0])).toBe((p[1] as { trips: number }).trips)
    expect(Number(row[1])).toBe(1)
    expect(row[2]).toBe('HV0005')
    expect(Number(row[3])).toBeGreaterThanOrEqual(1)
    expect(Number(row[4])).toBeLessThanOrEqual(263)
    expect(Number(row[5])).toBeGreaterThanOrEqual(1)
    expect(Number(row[6])).toBeLessThanOrEqual(263)
    expect(String(row[7]) >= '2024-03-01').toBe(true)
    expect(String(row[8]) < '2024-04-01').toBe(true)
    expect(row[9]).toBe(true)
    expect(row[10]).toBe(true)
    expect(Number(row[11])).toBeGreaterThan(0)
    expect(Number(row[12])).toBeGreaterThan(0)
    expect(Number(row[13])).toBe(0)
  })

  it('weekday rush hours peak, companies differ in zone mix, some drivers work for several companies', async () => {
    const dir = tmp()
    await generate(plan(3, 20000, dir), 3)
    const all = `read_parquet('${dir}/*.parquet', filename = true)`
    const perHour = async (h: number): Promise<number> => Number(await one(`SELECT count(*) FROM ${all} WHERE isodow(pickup_datetime) <= 5 AND hour(pickup_datetime) = ${h}`))
    expect(await perHour(8)).toBeGreaterThan(4 * (await perHour(3)))
    expect(await perHour(17)).toBeGreaterThan(await perHour(12))
    // the companies agree on the city's hot spots but each has its own zone mix (its top-5 order)
    const tops = (await c.runAndReadAll(`SELECT filename, list(z ORDER BY n DESC, z)[1:5]::VARCHAR FROM (SELECT filename, PULocationID z, count(*) n FROM ${all} GROUP BY ALL) GROUP BY 1`)).getRows()
    expect(new Set(tops.map((r) => String(r[1]))).size).toBe(3)
    const busy = zoneOrder(3, 0).slice(0, 40).join(',') // the city's busy zones (any company's first 40)
    const inBusy = Number(await one(`SELECT avg((PULocationID IN (${busy}))::INTEGER) FROM ${all}`))
    expect(inBusy).toBeGreaterThan(0.33) // 40 of 263 zones: 15 % if uniform, ~40 % by design
    expect(Number(await one(`SELECT count(DISTINCT PULocationID) FROM ${all}`))).toBeGreaterThan(200)
    const shared = Number(await one(`SELECT count(*) FROM (SELECT vehicle_id FROM ${all} GROUP BY 1 HAVING count(DISTINCT filename) > 1)`))
    expect(shared).toBeGreaterThan(0)
  })
})

describe('splitTlc', () => {
  it('splits a TLC-shaped file (no vehicle_id) by licence, dropping and counting zones 264/265', async () => {
    const dir = tmp()
    const src = join(dir, 'fhvhv_tripdata_2024-03.parquet')
    await c.run(`COPY (SELECT
        (['HV0003', 'HV0005', 'HV0004'])[1 + (i % 3)::INTEGER] AS hvfhs_license_num,
        'B0' || (i % 3)::VARCHAR AS dispatching_base_num,
        TIMESTAMP '2024-03-01' + to_minutes(i::INTEGER) AS pickup_datetime,
        TIMESTAMP '2024-03-01' + to_minutes(i::INTEGER + 12) AS dropoff_datetime,
        CASE WHEN i % 10 = 0 THEN 264 WHEN i % 10 = 5 THEN 265 ELSE 1 + (i % 263)::INTEGER END AS PULocationID,
        1 + (i % 200)::INTEGER AS DOLocationID,
        1.5 AS trip_miles, 720 AS trip_time, 12.5 AS base_passenger_fare
      FROM range(300) t(i)) TO '${src}' (FORMAT parquet)`)
    const out = join(dir, 'split')
    const r = await splitTlc(src, out)
    expect(r.dropped).toBe(60)
    expect(r.companies.map((x) => x.license).sort()).toEqual(['HV0003', 'HV0004', 'HV0005'])
    expect(r.companies.reduce((a, x) => a + x.trips, 0)).toBe(240)
    for (const co of r.companies) {
      const row = (await c.runAndReadAll(`SELECT count(*), count(DISTINCT hvfhs_license_num), min(hvfhs_license_num), max(PULocationID) FROM '${co.file}'`)).getRows()[0] as unknown[]
      expect(Number(row[0])).toBe(co.trips)
      expect(Number(row[1])).toBe(1)
      expect(row[2]).toBe(co.license)
      expect(Number(row[3])).toBeLessThanOrEqual(263)
    }
  })
})
