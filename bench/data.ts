// Local aggregation throughput: a synthetic TLC-like trips table (263 zones × 24 hours), written by
// DuckDB as Parquet and CSV into `dir`, then computeVector for the heat-map query (count, mean fare,
// sum miles, weekday filter) over each. Measures, asserts nothing; removes the files it wrote.
// Standalone: node bench/data.ts [rows]
import { rmSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { closeEngine, computeVector } from '../src/data/compute.ts'
import type { DatasetSource } from '../src/data/source.ts'
import type { Query } from '../src/query/types.ts'

const QUERY: Query = {
  version: 1, id: 'bench-zone-hour', title: 'Pickups, mean fare and miles per zone and hour, weekdays', dataset: 'trips',
  timezone: 'America/New_York',
  filter: { op: 'and', args: [
    { op: 'between', ref: { column: 'pickup_datetime', fn: 'dow' }, low: 1, high: 5, negated: false },
    { op: 'cmp', cmp: '>', ref: { column: 'trip_miles' }, value: 0 }
  ] },
  group_by: [
    { name: 'zone', domain: { kind: 'int_range', ref: { column: 'PULocationID' }, min: 1, max: 263 } },
    { name: 'hour', domain: { kind: 'hour_of_day', column: 'pickup_datetime' } }
  ],
  aggregates: [
    { name: 'pickups', kind: 'count' },
    { name: 'fare', kind: 'mean', column: 'base_passenger_fare', scale: 100, clip: [0, 500] },
    { name: 'miles', kind: 'sum', column: 'trip_miles', scale: 1000, clip: [0, 100] }
  ],
  max_rows_per_provider: 100_000_000,
  participants: { buyer: 'bench', providers: ['a', 'b', 'c'] }, min_providers: 3, output: ['bench'],
  timeouts: { negotiate_s: 30, compute_s: 300, confirm_s: 30 }
}

async function generate(rows: number, parquet: string, csv: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  try {
    const q = (s: string): string => `'${s.replace(/'/g, "''")}'`
    await c.run(`CREATE TEMP TABLE trips AS SELECT
      CAST(1 + hash(i) % 263 AS INTEGER) AS PULocationID,
      TIMESTAMP '2024-01-01' + to_microseconds(CAST(hash(i * 7 + 1) % 2678400000000 AS BIGINT)) AS pickup_datetime,
      CASE WHEN hash(i * 11 + 2) % 50 = 0 THEN 0 ELSE (hash(i * 13 + 3) % 30000) / 1000.0 END AS trip_miles,
      CASE WHEN hash(i * 17 + 4) % 100 = 0 THEN NULL ELSE (hash(i * 19 + 5) % 12000) / 100.0 END AS base_passenger_fare
      FROM range(${Math.floor(rows)}) t(i)`)
    await c.run(`COPY trips TO ${q(parquet)} (FORMAT parquet)`)
    await c.run(`COPY trips TO ${q(csv)} (FORMAT csv, HEADER true)`)
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

async function time(src: DatasetSource): Promise<number> {
  const t0 = performance.now()
  const { vector } = await computeVector(src, QUERY)
  vector.fill(0n)
  return (performance.now() - t0) / 1000
}

export async function benchData(opts: { rows: number; dir: string }): Promise<{ parquet_rows_per_s: number; csv_rows_per_s: number; parquet_s: number; csv_s: number }> {
  const parquet = join(opts.dir, 'bench-trips.parquet')
  const csv = join(opts.dir, 'bench-trips.csv')
  try {
    await generate(opts.rows, parquet, csv)
    const parquet_s = await time({ name: 'trips', path: parquet, format: 'parquet' })
    const csv_s = await time({
      name: 'trips', path: csv, format: 'csv',
      columns: { PULocationID: 'INTEGER', pickup_datetime: 'TIMESTAMP', trip_miles: 'DOUBLE', base_passenger_fare: 'DOUBLE' }
    })
    const r = (x: number): number => Math.round(x * 1000) / 1000
    return { parquet_rows_per_s: Math.round(opts.rows / parquet_s), csv_rows_per_s: Math.round(opts.rows / csv_s), parquet_s: r(parquet_s), csv_s: r(csv_s) }
  } finally {
    await closeEngine()
    rmSync(parquet, { force: true })
    rmSync(csv, { force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = mkdtempSync(join(tmpdir(), 'mpc-bench-data-'))
  try {
    console.log(JSON.stringify(await benchData({ rows: Number(process.argv[2] ?? 1_000_000), dir })))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
