// Deterministic synthetic trips for K ride-sharing companies in the schema of NYC TLC's
// high-volume FHV trip records (plus a synthetic vehicle_id), generated inside DuckDB and written as
// Parquet. Same seed, same rows. Companies differ in market share and zone mix; demand peaks in
// weekday rush hours (7-9, 16-19).
import { DuckDBInstance } from '@duckdb/node-api'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

export const COMPANY_NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi', 'rho', 'sigma', 'tau', 'upsilon']
const LICENSES = ['HV0003', 'HV0005', 'HV0002', 'HV0004']

export interface Company {
  name: string
  license: string
  base: string
  /** Share of all trips. */
  share: number
  trips: number
  file: string
}

// relative demand per hour, weekdays and weekends (sums need not be 1)
const WEEKDAY = [2, 1.2, .8, .6, .8, 1.6, 3.5, 6.5, 7.5, 6, 4.5, 4.5, 4.8, 4.6, 4.8, 5.5, 7, 8, 8.2, 7, 5.5, 4.5, 3.8, 2.8]
const WEEKEND = [4.5, 3.8, 3.2, 2.4, 1.4, 1, 1.2, 1.8, 2.6, 3.4, 4.2, 4.8, 5, 5, 5, 5, 5, 5.2, 5.4, 5.4, 5.2, 5.2, 5.2, 5]

/** SQL CASE mapping a uniform u in [0,1) to an hour by the cumulative weights (constants, not input). */
function hourCase(weights: number[], u: string): string {
  const total = weights.reduce((a, b) => a + b, 0)
  let acc = 0
  const whens = weights.slice(0, -1).map((w, h) => {
    acc += w / total
    return `WHEN ${u} < ${acc.toFixed(6)} THEN ${h}`
  })
  return `CASE ${whens.join(' ')} ELSE 23 END`
}

// Busy high-volume FHV pick-up zones in TLC's published trip data (airports, Midtown, and the
// Brooklyn, Queens and Bronx hubs), roughly busiest first. Only IDs: the lookup file is optional.
const BUSY = [132, 138, 161, 230, 79, 48, 68, 170, 237, 236, 61, 76, 37, 42, 225, 244, 7, 181, 189, 231,
  186, 162, 142, 249, 234, 107, 164, 100, 113, 114, 39, 35, 17, 188, 89, 97, 74, 75, 41, 243]

/** Deterministic uniform [0,1) stream for the zone orders (data generation, not cryptography). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Company ci's zones 1-263 by popularity: the busy zones first, each moved by up to ~8 places
 * (so companies agree on the hot spots but not on their order), then the rest in a company order.
 */
export function zoneOrder(seed: number, ci: number): number[] {
  const r = prng(seed * 1000003 + ci * 7919 + 1)
  const busy = BUSY.map((z, i) => ({ z, k: i + 8 * r() })).sort((a, b) => a.k - b.k).map((x) => x.z)
  const rest = Array.from({ length: 263 }, (_, i) => i + 1).filter((z) => !BUSY.includes(z))
    .map((z) => ({ z, k: r() })).sort((a, b) => a.k - b.k).map((x) => x.z)
  return [...busy, ...rest]
}

export function plan(k: number, tripsPerCompany: number, dir: string): Company[] {
  if (!Number.isInteger(k) || k < 2 || k > 20) throw new Error('--companies must be between 2 and 20')
  const weights = Array.from({ length: k }, (_, i) => 1 / (i + 1.6)) // a market leader and a long tail
  const sum = weights.reduce((a, b) => a + b, 0)
  return weights.map((w, i) => ({
    name: COMPANY_NAMES[i] as string,
    license: LICENSES[i] ?? `HV${String(6 + i - LICENSES.length).padStart(4, '0')}`,
    base: `B${String(2510 + i * 7).padStart(5, '0')}`,
    share: w / sum,
    trips: Math.max(1000, Math.round((w / sum) * k * tripsPerCompany)),
    file: join(dir, `${COMPANY_NAMES[i]}.parquet`)
  }))
}

/** Write each company's Parquet file. Deterministic: every random draw is hash(seed, company, row, stream). */
export async function generate(companies: Company[], seed: number): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  const sharedPool = Math.max(10, Math.round(companies.reduce((a, x) => a + x.trips, 0) / 600))
  try {
    for (const [ci, co] of companies.entries()) {
      mkdirSync(join(co.file, '..'), { recursive: true })
      const u = (stream: number): string => `((hash(${seed}::BIGINT, ${ci}, i, ${stream}) % 1000000007)::DOUBLE / 1000000007)`
      const fleet = Math.max(20, Math.round(co.trips / 60))
      // zone popularity: a skewed draw of a popularity rank, mapped through the company's own zone order
      // (the city's busy zones first, in a company-specific order: each company has its own zone mix)
      const order = `[${zoneOrder(seed, ci).join(',')}]`
      // rank ~ Zipf-like, P(rank < r) = ((r + 1)^0.4 - 1) / (264^0.4 - 1): the busiest zone ~4 % of trips,
      // the 40 busy zones ~40 %, the quietest zone ~1/20 of the busiest
      const zone = (stream: number): string => `(${order})[1 + least(262, floor(pow(${u(stream)} * (pow(264, 0.4) - 1) + 1, 2.5))::BIGINT - 1)]`
      await c.run(`COPY (
        WITH d AS (
          SELECT i,
            TIMESTAMP '2024-03-01' + to_days(floor(${u(1)} * 31)::INTEGER) AS day,
            ${u(2)} AS uh, ${u(3)} AS um, ${u(4)} AS ud, ${u(5)} AS uf, ${u(6)} AS uv
          FROM range(${co.trips}) t(i)
        ), h AS (
          SELECT *, CASE WHEN isodow(day) <= 5 THEN ${hourCase(WEEKDAY, 'uh')} ELSE ${hourCase(WEEKEND, 'uh')} END AS hr,
            round(0.4 + 18 * pow(ud, 2.2), 2) AS miles
          FROM d
        ), t AS (
          SELECT *, day + to_hours(hr) + to_seconds(floor(um * 3600)::INTEGER) AS pickup,
            greatest(120, floor(miles * (110 + 240 * uf)))::BIGINT AS secs
          FROM h
        )
        SELECT
          '${co.license}' AS hvfhs_license_num,
          '${co.base}' AS dispatching_base_num,
          pickup AS pickup_datetime,
          pickup + to_seconds(secs) AS dropoff_datetime,
          ${zone(7)}::INTEGER AS PULocationID,
          ${zone(8)}::INTEGER AS DOLocationID,
          miles AS trip_miles,
          secs AS trip_time,
          round(2.5 + miles * 1.9 + secs / 60.0 * 0.55 + 25 * pow(uf, 8) + CASE WHEN ${u(9)} < 0.0005 THEN 900 ELSE 0 END, 2) AS base_passenger_fare,
          -- about 1 trip in 8 is driven by a multi-app driver from a pool shared by all companies
          CASE WHEN ${u(10)} < 0.125 THEN 'SHR-' || lpad(floor(${u(11)} * ${sharedPool})::BIGINT::VARCHAR, 5, '0')
               ELSE '${co.name.slice(0, 3).toUpperCase()}-' || lpad(floor(uv * ${fleet})::BIGINT::VARCHAR, 5, '0') END AS vehicle_id
        FROM t ORDER BY pickup, i  -- i breaks ties: the same seed writes the same bytes
      ) TO '${co.file.replace(/'/g, "''")}' (FORMAT parquet)`)
    }
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

/**
 * Real data: split a TLC HVFHV Parquet file by hvfhs_license_num into one file per company
 * (zones outside 1-263, i.e. 264/265 "unknown", are dropped and counted). Real files have no
 * vehicle identifier, so the distinct-vehicles query is synthetic-only.
 */
export async function splitTlc(file: string, dir: string): Promise<{ companies: Array<{ license: string; file: string; trips: number }>; dropped: number }> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  const src = `read_parquet('${file.replace(/'/g, "''")}')`
  try {
    mkdirSync(dir, { recursive: true })
    const dropped = Number((await c.runAndReadAll(`SELECT count(*) FROM ${src} WHERE NOT (PULocationID BETWEEN 1 AND 263)`)).getRows()[0]?.[0] ?? 0)
    const lic = (await c.runAndReadAll(`SELECT hvfhs_license_num, count(*) FROM ${src} WHERE PULocationID BETWEEN 1 AND 263 GROUP BY 1 ORDER BY 2 DESC`)).getRows()
    const companies = []
    for (const [license, n] of lic) {
      const l = String(license)
      if (!/^[A-Z0-9]+$/.test(l)) continue
      const out = join(dir, `${l}.parquet`)
      await c.run(`COPY (SELECT * FROM ${src} WHERE hvfhs_license_num = $1 AND PULocationID BETWEEN 1 AND 263) TO '${out.replace(/'/g, "''")}' (FORMAT parquet)`, [l])
      companies.push({ license: l, file: out, trips: Number(n) })
    }
    return { companies, dropped }
  } finally {
    c.closeSync()
    db.closeSync()
  }
}
