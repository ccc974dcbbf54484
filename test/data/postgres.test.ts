// PostgreSQL as a dataset source (issue 19), against a REAL server the test starts (test/helpers/
// postgres.ts). The property: random tables loaded into both DuckDB (a .duckdb file, the reference
// path) and Postgres (a C-collation database and an ICU en-US one), every random query gives
// bit-identical vectors and the same row accounting from both. Hostile names and values do only
// what the query says. Config: the connection string only from env or a 0600 file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { DuckDBInstance } from '@duckdb/node-api'
import { computeVector, closeEngine, inspectDataset } from '../../src/data/compute.ts'
import { checkDataset } from '../../src/data/check.ts'
import { validateDatasets, type DatasetSource } from '../../src/data/source.ts'
import type { Aggregate, ColumnRef, Domain, FilterExpr, GroupBy } from '../../src/query/types.ts'
import { query, tmp, rejection } from './fixtures.ts'
import { pgSkip, startPostgres, type PgServer } from '../helpers/postgres.ts'

const skip = pgSkip()
const dir = tmp()
let srv: PgServer
const RUNS = Number(process.env.PG_PROPERTY_RUNS ?? 25)

// hostile but valid column names (the validator refuses only '"' and control characters)
const CAT = "ca't; DROP TABLE trips; --ß🚕"
const DRV = 'дрв'
const CATS = ['a', 'B', 'b', "c'd", 'q"r,s', '); DROP TABLE trips; --', 'é', 'Z']
const T0 = Date.UTC(2024, 2, 8) // 25 days: US DST (Mar 10) and EU DST (Mar 31)
const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin']
const iso = (s: number): string => new Date(T0 + s * 1000).toISOString().slice(0, 19).replace('T', ' ')
const isoDay = (k: number): string => new Date(T0 + k * 86_400_000).toISOString().slice(0, 10)

interface Row { zone: number | null; fare: number | null; amt: string | null; cat: string | null; drv: string | null; ts: number | null; tz: number | null; d: number | null }

/** x with the last bit flipped by ±1 ulp. */
function ulp(x: number, dir: 1 | -1): number {
  const b = new DataView(new ArrayBuffer(8))
  b.setFloat64(0, x)
  const v = b.getBigUint64(0)
  b.setBigUint64(0, x === 0 ? 1n : (x > 0) === (dir > 0) ? v + 1n : v - 1n)
  return b.getFloat64(0)
}
const fareArb = fc.oneof(
  fc.double({ min: -60, max: 160, noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: -480, max: 1280 }).map((k) => k / 8),
  fc.integer({ min: -6000, max: 16000 }).map((k) => k / 1000),
  // k + 0.5 after scale 10 / 100, and one ulp either side
  fc.record({ k: fc.integer({ min: -600, max: 1600 }), s: fc.constantFrom(10, 100), u: fc.constantFrom(0, 1, -1) }).map(({ k, s, u }) => (u === 0 ? (k + 0.5) / s : ulp((k + 0.5) / s, u as 1 | -1))),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, 1e300, -1e300, 2 ** 62, -(2 ** 62), 0, -0, 5e-324, -5e-324, 1e-310, 2.2250738585072014e-308)
)
const rowArb: fc.Arbitrary<Row> = fc.record({
  zone: fc.option(fc.integer({ min: -1, max: 6 }), { nil: null, freq: 8 }),
  fare: fc.option(fareArb, { nil: null, freq: 6 }),
  amt: fc.option(fc.integer({ min: -99_999_999, max: 99_999_999 }).map((k) => (k / 1000).toFixed(3)), { nil: null, freq: 6 }),
  cat: fc.option(fc.constantFrom(...CATS), { nil: null, freq: 8 }),
  drv: fc.option(fc.constantFrom('d1', 'd2', 'D1', 'ü'), { nil: null, freq: 8 }),
  ts: fc.option(fc.integer({ min: 0, max: 25 * 86400 - 1 }), { nil: null, freq: 8 }),
  tz: fc.option(fc.integer({ min: 0, max: 25 * 86400 - 1 }), { nil: null, freq: 8 }),
  d: fc.option(fc.integer({ min: 0, max: 24 }), { nil: null, freq: 8 })
})

const numRef = fc.constantFrom<ColumnRef>({ column: 'zone' }, { column: 'fare' }, { column: 'amt' })
const timeCol = fc.constantFrom('ts', 'tz', 'd')
const domainArb: fc.Arbitrary<Domain> = fc.oneof(
  fc.record({ min: fc.integer({ min: -1, max: 3 }), w: fc.integer({ min: 0, max: 3 }), ref: numRef }).map(({ min, w, ref }) => ({ kind: 'int_range', ref, min, max: min + w }) as Domain),
  fc.shuffledSubarray(CATS, { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: CAT }, values }) as Domain),
  fc.shuffledSubarray([0, 1, 2, 3, 5], { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: 'zone' }, values }) as Domain),
  fc.record({ edges: fc.uniqueArray(fc.integer({ min: -40, max: 140 }), { minLength: 2, maxLength: 5 }), closed: fc.constantFrom('left' as const, 'right' as const), ref: numRef })
    .map(({ edges, closed, ref }) => ({ kind: 'bins', ref, edges: [...edges].sort((a, b) => a - b), closed }) as Domain),
  timeCol.map((column) => ({ kind: 'hour_of_day', column }) as Domain),
  timeCol.map((column) => ({ kind: 'day_of_week', column }) as Domain),
  fc.record({ from: fc.integer({ min: -1, max: 24 }), w: fc.integer({ min: 0, max: 4 }), column: timeCol }).map(({ from, w, column }) => ({ kind: 'date', column, from: isoDay(from), to: isoDay(from + w) }) as Domain),
  fc.record({ values: fc.shuffledSubarray([0, 1, 2, 3, 7, 23], { minLength: 1 }), column: timeCol }).map(({ values, column }) => ({ kind: 'categories', ref: { column, fn: 'hour' }, values }) as Domain)
)
const aggArb: fc.Arbitrary<Omit<Aggregate, 'name'>> = fc.oneof(
  fc.constant({ kind: 'count' as const }),
  fc.constantFrom(DRV, CAT, 'amt', 'tz').map((column) => ({ kind: 'count_distinct' as const, column })),
  fc.record({
    kind: fc.constantFrom('sum' as const, 'mean' as const), column: fc.constantFrom('fare', 'amt', 'zone'),
    lo: fc.integer({ min: -30, max: 20 }), span: fc.integer({ min: 0, max: 120 }),
    scale: fc.constantFrom(1, 3, 10, 100, 1000, 0.5, 0.01, 0.1)
  }).map(({ kind, column, lo, span, scale }) => ({ kind, column, scale, clip: [lo, lo + span] as [number, number] }))
)
const leafArb: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({ ref: numRef, cmp: fc.constantFrom('=' as const, '!=' as const, '<' as const, '<=' as const, '>' as const, '>=' as const), value: fc.integer({ min: -40, max: 400 }).map((k) => k / 4) }).map((x) => ({ op: 'cmp', ...x }) as FilterExpr),
  fc.record({ values: fc.shuffledSubarray(CATS, { minLength: 1 }), negated: fc.boolean() }).map((x) => ({ op: 'in', ref: { column: CAT }, ...x }) as FilterExpr),
  fc.record({ cmp: fc.constantFrom('<' as const, '>=' as const), value: fc.constantFrom(...CATS) }).map((x) => ({ op: 'cmp', ref: { column: CAT }, ...x }) as FilterExpr),
  fc.record({ ref: fc.constantFrom<ColumnRef>({ column: 'fare' }, { column: CAT }, { column: 'ts' }, { column: 'tz' }), negated: fc.boolean() }).map((x) => ({ op: 'is_null', ...x }) as FilterExpr),
  fc.record({ low: fc.integer({ min: 1, max: 7 }), w: fc.integer({ min: 0, max: 3 }), negated: fc.boolean(), column: timeCol }).map(({ low, w, negated, column }) => ({ op: 'between', ref: { column, fn: 'dow' }, low, high: low + w, negated }) as FilterExpr),
  fc.record({ cmp: fc.constantFrom('<' as const, '>=' as const, '=' as const), k: fc.integer({ min: 0, max: 24 }), column: timeCol }).map(({ cmp, k, column }) => ({ op: 'cmp', cmp, ref: { column, fn: 'date' }, value: isoDay(k) }) as FilterExpr),
  // a string literal compared with a timestamp / timestamptz column (read in the query's zone)
  fc.record({ cmp: fc.constantFrom('<' as const, '>=' as const), s: fc.integer({ min: 0, max: 25 * 86400 }), column: fc.constantFrom('ts', 'tz') }).map(({ cmp, s, column }) => ({ op: 'cmp', cmp, ref: { column }, value: iso(s) }) as FilterExpr)
)
const filterArb: fc.Arbitrary<FilterExpr | null> = fc.oneof(
  fc.constant(null), leafArb, leafArb.map((arg) => ({ op: 'not', arg }) as FilterExpr),
  fc.record({ op: fc.constantFrom('and' as const, 'or' as const), args: fc.array(leafArb, { minLength: 2, maxLength: 3 }) }) as fc.Arbitrary<FilterExpr>
)

const qid = (s: string): string => `"${s.replace(/"/g, '""')}"`
const COLS = `zone INTEGER, fare DOUBLE PRECISION, amt DECIMAL(12,3), ${qid(CAT)} VARCHAR, ${qid(DRV)} VARCHAR, ts TIMESTAMP, tz TIMESTAMPTZ, d DATE`
const dbVal = (r: Row): Array<string | number | null> => [
  r.zone, r.fare === null ? null : Number.isNaN(r.fare) ? 'NaN' : r.fare === Infinity ? 'Infinity' : r.fare === -Infinity ? '-Infinity' : Object.is(r.fare, -0) ? '-0' : String(r.fare),
  r.amt, r.cat, r.drv, r.ts === null ? null : iso(r.ts), r.tz === null ? null : `${iso(r.tz)}+00`, r.d === null ? null : isoDay(r.d)
]

let n = 0
/** The same rows as a DuckDB file table and as Postgres tables in both databases. */
async function load(rows: Row[]): Promise<{ duck: DatasetSource; pgC: DatasetSource; pgIcu: DatasetSource }> {
  const name = `t${++n}`
  const file = join(dir, `${name}.duckdb`)
  const db = await DuckDBInstance.create(file)
  const c = await db.connect()
  await c.run(`CREATE TABLE trips (${COLS.replace('DOUBLE PRECISION', 'DOUBLE')})`)
  const app = await c.prepare(`INSERT INTO trips VALUES ($1, CAST($2 AS DOUBLE), CAST($3 AS DECIMAL(12,3)), $4, $5, CAST($6 AS TIMESTAMP), CAST($7 AS TIMESTAMPTZ), CAST($8 AS DATE))`)
  for (const r of rows) {
    const v = dbVal(r)
    v.forEach((x, i) => (x === null ? app.bindNull(i + 1) : i === 0 ? app.bindInteger(i + 1, x as number) : app.bindVarchar(i + 1, String(x))))
    await app.run()
  }
  c.closeSync()
  db.closeSync()
  for (const d of ['mpc', 'mpc_icu']) {
    await srv.exec(`CREATE TABLE ${name} (${COLS})`, [], d)
    await srv.exec(`GRANT SELECT ON ${name} TO reader`, [], d)
    for (let i = 0; i < rows.length; i += 200) {
      const chunk = rows.slice(i, i + 200)
      const params: unknown[] = []
      const tuples = chunk.map((r) => `(${dbVal(r).map((x) => { params.push(x); return `$${params.length}` }).join(', ')})`)
      await srv.exec(`INSERT INTO ${name} VALUES ${tuples.join(', ')}`, params, d)
    }
  }
  process.env.MPC_TEST_PG_C = srv.readerUrl('mpc')
  process.env.MPC_TEST_PG_ICU = srv.readerUrl('mpc_icu')
  const ds = validateDatasets({
    duck: { path: file, format: 'duckdb', table: 'trips' },
    pgC: { format: 'postgres', table: name, connection_env: 'MPC_TEST_PG_C' },
    pgIcu: { format: 'postgres', table: name, schema: 'public', connection_env: 'MPC_TEST_PG_ICU' }
  }, dir)
  return { duck: ds.duck as DatasetSource, pgC: ds.pgC as DatasetSource, pgIcu: ds.pgIcu as DatasetSource }
}

const strip = (s: { ms: number } & Record<string, unknown>): Record<string, unknown> => ({ ...s, ms: 0 })

describe.skipIf(skip !== null)('PostgreSQL source against a real server', () => {
  beforeAll(async () => {
    srv = await startPostgres()
    await srv.exec(`CREATE DATABASE mpc TEMPLATE template0 LOCALE 'C'`)
    // a non-C collation: without COLLATE "C" here, 'B' < 'a' and DISTINCT would differ
    await srv.exec(`CREATE DATABASE mpc_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`)
  }, 120_000)
  afterAll(async () => {
    srv?.stop()
    await closeEngine()
    rmSync(dir, { recursive: true, force: true })
  })

  it('every random query gives bit-identical vectors from DuckDB and Postgres (C and ICU collations)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(rowArb, { minLength: 0, maxLength: 60 }),
      fc.array(fc.record({ g: fc.array(domainArb, { minLength: 0, maxLength: 2 }), a: fc.array(aggArb, { minLength: 1, maxLength: 3 }), f: filterArb, tz: fc.constantFrom(...ZONES), t: fc.constantFrom(3, 1000) }), { minLength: 1, maxLength: 4 }),
      async (rows, qs) => {
        const s = await load(rows)
        for (const x of qs) {
          const group_by: GroupBy[] = x.g.map((domain, i) => ({ name: `g${i}`, domain }))
          const aggregates = x.a.map((a, i) => ({ ...a, name: `a${i}` }) as Aggregate)
          const q = await query({ group_by, aggregates, filter: x.f, timezone: x.tz, max_rows_per_provider: x.t })
          // both statements of each engine: a run's (filter as WHERE) and the preview's (dropped rows counted)
          for (const countFiltered of [false, true]) {
            const want = await computeVector(s.duck, q, { countFiltered })
            for (const src of [s.pgC, s.pgIcu]) {
              expect(await checkDataset(src, q, 'p')).toBeNull()
              const got = await computeVector(src, q, { countFiltered })
              expect(Array.from(got.vector, String)).toEqual(Array.from(want.vector, String))
              expect(strip(got.stats as never)).toEqual(strip(want.stats as never))
            }
          }
        }
      }
    ), { numRuns: RUNS })
  }, 600_000)

  it('hostile values are data: a literal with quotes and semicolons matches itself and drops nothing', async () => {
    const s = await load([{ zone: 1, fare: 1, amt: null, cat: '); DROP TABLE trips; --', drv: null, ts: null, tz: null, d: null }, { zone: 1, fare: 2, amt: null, cat: "c'd", drv: null, ts: null, tz: null, d: null }])
    const q = await query({ group_by: [], aggregates: [{ name: 'n', kind: 'count' }], filter: { op: 'in', ref: { column: CAT }, values: ["'); DROP TABLE trips; --", '); DROP TABLE trips; --'], negated: false } })
    expect(Array.from((await computeVector(s.pgC, q)).vector)).toEqual([1n])
    expect((await srv.exec(`SELECT count(*)::int AS n FROM t${n}`, [], 'mpc')).rows[0].n).toBe(2)
    // hostile schema and table names in config.yaml are quoted identifiers, nothing more
    const schema = 'sch"ema; --'
    const table = "tr'ips\"; DROP TABLE victim; --🚕"
    await srv.exec(`CREATE TABLE victim (x int)`, [], 'mpc')
    await srv.exec(`CREATE SCHEMA ${qid(schema)}`, [], 'mpc')
    await srv.exec(`CREATE TABLE ${qid(schema)}.${qid(table)} (zone integer, fare float8)`, [], 'mpc')
    await srv.exec(`INSERT INTO ${qid(schema)}.${qid(table)} VALUES (1, 2.5), (2, 3)`, [], 'mpc')
    await srv.exec(`GRANT USAGE ON SCHEMA ${qid(schema)} TO reader; GRANT SELECT ON ${qid(schema)}.${qid(table)} TO reader`, [], 'mpc')
    const h = validateDatasets({ x: { format: 'postgres', schema, table, connection_env: 'MPC_TEST_PG_C' } }, dir).x as DatasetSource
    const qh = await query({ aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 10, clip: [0, 10] }] })
    expect(await checkDataset(h, qh, 'p')).toBeNull()
    expect(Array.from((await computeVector(h, qh)).vector)).toEqual([1n, 25n, 1n, 30n, 0n, 0n])
    expect((await srv.exec(`SELECT to_regclass('victim') IS NOT NULL AS ok`, [], 'mpc')).rows[0].ok).toBe(true)
  }, 60_000)

  it('acceptance check: a missing column and an unreadable literal are schema_mismatch; a missing table or unset env is dataset_unavailable', async () => {
    const s = await load([])
    const q1 = await query({ group_by: [], aggregates: [{ name: 'x', kind: 'sum', column: 'nope', scale: 1, clip: [0, 1] }] })
    expect((await checkDataset(s.pgC, q1, 'p'))?.code).toBe('schema_mismatch')
    const q2 = await query({ group_by: [], aggregates: [{ name: 'n', kind: 'count' }], filter: { op: 'cmp', cmp: '<', ref: { column: 'ts' }, value: 'not a time' } })
    expect((await checkDataset(s.pgC, q2, 'p'))?.code).toBe('schema_mismatch')
    const q3 = await query({ group_by: [], aggregates: [{ name: 'n', kind: 'count' }] })
    expect((await checkDataset({ ...s.pgC, table: 'absent' }, q3, 'p'))?.code).toBe('dataset_unavailable')
    expect((await checkDataset({ ...s.pgC, connection: { env: 'MPC_TEST_UNSET_VAR' } }, q3, 'p'))?.code).toBe('dataset_unavailable')
    // columns hints are checked against the catalog
    const hinted = validateDatasets({ x: { format: 'postgres', table: `t${n}`, connection_env: 'MPC_TEST_PG_C', columns: { zone: 'INTEGER', amt: 'DECIMAL(12,3)' } } }, dir).x as DatasetSource
    expect(await checkDataset(hinted, q3, 'p')).toBeNull()
    const wrong = validateDatasets({ x: { format: 'postgres', table: `t${n}`, connection_env: 'MPC_TEST_PG_C', columns: { zone: 'VARCHAR' } } }, dir).x as DatasetSource
    expect((await checkDataset(wrong, q3, 'p'))?.code).toBe('dataset_unavailable')
    const info = await inspectDataset(s.pgC)
    expect(info.rows).toBe(0)
    expect(info.columns.map((c) => c.name)).toEqual(['zone', 'fare', 'amt', CAT, DRV, 'ts', 'tz', 'd'])
  }, 60_000)

  it('an unbounded numeric (its values may overflow float8) is refused as a number before signing; a real column works', async () => {
    await srv.exec(`CREATE TABLE wide (zone integer, big numeric, r real)`, [], 'mpc')
    await srv.exec(`INSERT INTO wide VALUES (1, 1e400, 'NaN'), (1, -1e-400, 1.5), (2, 'NaN', '-Infinity')`, [], 'mpc')
    await srv.exec('GRANT SELECT ON wide TO reader', [], 'mpc')
    process.env.MPC_TEST_PG_C = srv.readerUrl('mpc')
    const src = validateDatasets({ x: { format: 'postgres', table: 'wide', connection_env: 'MPC_TEST_PG_C' } }, dir).x as DatasetSource
    const big = await query({ aggregates: [{ name: 's', kind: 'sum', column: 'big', scale: 1, clip: [0, 10] }] })
    expect((await checkDataset(src, big, 'p'))?.code).toBe('schema_mismatch')
    const distinct = await query({ aggregates: [{ name: 'd', kind: 'count_distinct', column: 'big' }, { name: 's', kind: 'sum', column: 'r', scale: 10, clip: [-5, 5] }] })
    expect(await checkDataset(src, distinct, 'p')).toBeNull()
    // zone 1..3: zone 1 has 2 distinct non-NaN values, r: NaN skipped, 1.5 → 15; zone 2: -Infinity clipped to -5 → -50
    expect(Array.from((await computeVector(src, distinct)).vector, (v) => BigInt.asIntN(64, v))).toEqual([2n, 15n, 0n, -50n, 0n, 0n])
  }, 60_000)

  it('a connection_file readable by others is refused; a 0600 one works', async () => {
    await load([])
    const f = join(dir, 'pg-url')
    writeFileSync(f, srv.readerUrl('mpc') + '\n')
    chmodSync(f, 0o644)
    const src = validateDatasets({ x: { format: 'postgres', table: `t${n}`, connection_file: f } }, dir).x as DatasetSource
    expect((await rejection(inspectDataset(src))).message).toMatch(/readable by others: chmod 600/)
    chmodSync(f, 0o600)
    expect((await inspectDataset(src)).rows).toBe(0)
  }, 60_000)

  it('config.yaml refuses a postgres dataset without exactly one connection source', () => {
    expect(() => validateDatasets({ x: { format: 'postgres', table: 't' } }, dir)).toThrow(/exactly one of connection_env/)
    expect(() => validateDatasets({ x: { format: 'postgres', table: 't', connection_env: 'A', connection_file: 'b' } }, dir)).toThrow(/exactly one/)
    expect(() => validateDatasets({ x: { format: 'postgres', table: 't', connection_env: 'A', password: 'x' } }, dir)).toThrow(/unknown key "password"/)
  })

  it('the statement runs under a statement_timeout of the query\'s compute_s', async () => {
    // a view that takes 3 s to produce its one row (a view is a table to the agent)
    await srv.exec(`CREATE VIEW sleepy AS SELECT 1 AS zone, 1.0::float8 AS fare FROM (SELECT pg_sleep(3)) s`, [], 'mpc')
    await srv.exec('GRANT SELECT ON sleepy TO reader', [], 'mpc')
    process.env.MPC_TEST_PG_C = srv.readerUrl('mpc')
    const src = validateDatasets({ x: { format: 'postgres', table: 'sleepy', connection_env: 'MPC_TEST_PG_C' } }, dir).x as DatasetSource
    const q = await query({ timeouts: { negotiate_s: 5, compute_s: 1, confirm_s: 5 } })
    const t0 = performance.now()
    expect((await rejection(computeVector(src, q))).message).toMatch(/statement timeout/)
    expect(performance.now() - t0).toBeLessThan(2900)
  }, 60_000)

  it('an aborted run cancels its statement in the database', async () => {
    await srv.exec(`CREATE TABLE IF NOT EXISTS slow AS SELECT g AS zone, g::float8 AS fare FROM generate_series(1, 3000000) g`, [], 'mpc')
    await srv.exec('GRANT SELECT ON slow TO reader', [], 'mpc')
    process.env.MPC_TEST_PG_C = srv.readerUrl('mpc')
    const src = validateDatasets({ x: { format: 'postgres', table: 'slow', connection_env: 'MPC_TEST_PG_C' } }, dir).x as DatasetSource
    const q = await query({ group_by: [], aggregates: [{ name: 'd', kind: 'count_distinct', column: 'fare' }], timeouts: { negotiate_s: 5, compute_s: 60, confirm_s: 5 } })
    const ac = new AbortController()
    const p = computeVector(src, q, { signal: ac.signal })
    await new Promise((r) => setTimeout(r, 400))
    ac.abort()
    expect((await rejection(p)).message).toMatch(/cancelled/)
    // the statement is gone from the server (cancelled, not left running)
    let active = 1
    for (let i = 0; i < 50 && active > 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      active = Number((await srv.exec(`SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'reader' AND state = 'active'`)).rows[0].n)
    }
    expect(active).toBe(0)
  }, 120_000)
})
