// The data layer end to end on real DuckDB: every source format, hostile names and values, time
// functions, every data error (DataError → exit 6, one line), fixed-point ties, cleanup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clampCell, computeVector, closeEngine, inspectDataset } from '../../src/data/compute.ts'
import { slotSensitivities } from '../../src/privacy/accounting.ts'
import { dpAggregates } from '../../src/query/privacy.ts'
import { engineTempDir } from '../../src/data/engine.ts'
import { compileQuery } from '../../src/data/compile.ts'
import { DataError } from '../../src/data/errors.ts'
import { fixedPoint } from '../../src/query/layout.ts'
import type { GroupBy } from '../../src/query/types.ts'
import { query as q, rejection, signed, source, sql, tmp } from './fixtures.ts'

const dir = tmp()
const src = (file: string, format: string, extra: Record<string, unknown> = {}) => source(dir, file, format, extra)

interface Row { zone: number | null; ts: string; fare: number | null; driver: string; weird: string }
const rows: Row[] = [
  { zone: 1, ts: '2024-03-04 07:10:00', fare: 12.5, driver: 'a', weird: "x'); DROP TABLE t; --" },
  { zone: 2, ts: '2024-03-04 08:20:00', fare: 600, driver: 'b', weird: 'y' },
  { zone: 2, ts: '2024-03-10 08:50:00', fare: -3.25, driver: 'a', weird: 'z' },
  { zone: 3, ts: '2024-03-05 17:00:00', fare: null, driver: 'c', weird: 'x' },
  { zone: 9, ts: '2024-03-05 17:30:00', fare: 7, driver: 'c', weird: 'x' }
]
const CSV_COLUMNS = { zone: 'INTEGER', ts: 'TIMESTAMP', fare: 'DOUBLE', driver: 'VARCHAR', weird: 'VARCHAR', 'semi;-- col': 'INTEGER' }
const csv = 'zone,ts,fare,driver,weird,"semi;-- col"\n' + rows.map((r) => `${r.zone ?? ''},${r.ts},${r.fare ?? ''},${r.driver},"${r.weird}",1`).join('\n') + '\n'

beforeAll(async () => {
  writeFileSync(join(dir, 'trips.csv'), csv)
  const from = `read_csv('${join(dir, 'trips.csv')}', header = true, types = {'ts': 'TIMESTAMP'})`
  await sql(`COPY (SELECT * FROM ${from}) TO '${join(dir, 'a.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from} LIMIT 2) TO '${join(dir, 'part1.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from} OFFSET 2) TO '${join(dir, 'part2.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from}) TO '${join(dir, 'a.ndjson')}' (FORMAT json)`)
  await sql(`COPY (SELECT * FROM ${from}) TO '${join(dir, 'arr.json')}' (FORMAT json, ARRAY true)`)
  await sql(`ATTACH '${join(dir, 'w.duckdb')}' AS w; CREATE TABLE w.trips AS SELECT * FROM ${from}`)
})
afterAll(async () => {
  await closeEngine()
  rmSync(dir, { recursive: true, force: true })
})

// zone 1: 1 row, fare 1250; zone 2: 2 rows, clip(600)=500→50000 and clip(-3.25)=0; zone 3: 1 row, NULL fare
const EXPECTED = [1, 1250, 2, 50000, 1, 0]

describe('sources', () => {
  it.each([
    ['csv (declared types)', 'trips.csv', 'csv', { columns: CSV_COLUMNS }],
    ['csv (declared with aliases)', 'trips.csv', 'csv', { columns: { ...CSV_COLUMNS, zone: 'int', fare: 'float8' } }],
    ['parquet', 'a.parquet', 'parquet', {}],
    ['parquet glob of two files', 'part*.parquet', 'parquet', {}],
    ['ndjson', 'a.ndjson', 'json', { columns: CSV_COLUMNS }],
    ['duckdb table', 'w.duckdb', 'duckdb', { table: 'trips' }]
  ])('%s', async (_k, file, format, extra) => {
    const { vector, stats } = await computeVector(src(file, format, extra), await q(), { countFiltered: true })
    expect(signed(vector)).toEqual(EXPECTED)
    expect(stats).toMatchObject({ rows: 5, matched: 4, outOfDomain: 1, nullsSkipped: 1, clipped: 2, filtered: 0 })
    // as a run computes it: the filter is the statement's WHERE, dropped rows are not counted; same vector
    const run = await computeVector(src(file, format, extra), await q())
    expect(signed(run.vector)).toEqual(EXPECTED)
    expect(run.stats).toMatchObject({ rows: null, matched: 4, outOfDomain: 1, nullsSkipped: 1, clipped: 2, filtered: null })
  })

  it('inspect lists the schema and rows', async () => {
    const info = await inspectDataset(src('a.parquet', 'parquet'))
    expect(info.rows).toBe(5)
    expect(info.columns).toContainEqual({ name: 'ts', type: 'TIMESTAMP' })
    expect(info.columns.map((c) => c.name)).toContain('semi;-- col')
  })

  it('mean takes a sum slot and a count slot; count_distinct counts non-null values; negative sums are two\'s complement', async () => {
    const { vector } = await computeVector(src('a.parquet', 'parquet'), await q({
      aggregates: [
        { name: 'm', kind: 'mean', column: 'fare', scale: 4, clip: [-10, 10] },
        { name: 'd', kind: 'count_distinct', column: 'driver' }
      ]
    }))
    // zone 1: 10*4=40, 1, {a}; zone 2: 10*4 + -3.25*4 = 27, 2, {a,b}; zone 3: NULL fare → 0, 0, {c}
    expect(signed(vector)).toEqual([40, 1, 1, 27, 2, 2, 0, 0, 1])
    const neg = await computeVector(src('a.parquet', 'parquet'), await q({ aggregates: [{ name: 's', kind: 'sum', column: 'fare', scale: 1000, clip: [-50, -1] }] }))
    expect(Array.from(neg.vector)).toEqual([BigInt.asUintN(64, -1000n), BigInt.asUintN(64, -4250n), 0n])
  })

  it('no group_by: one cell; a filter that matches nothing gives zeros of the full length', async () => {
    const one = await computeVector(src('a.parquet', 'parquet'), await q({ group_by: [] }))
    expect(signed(one.vector)).toEqual([5, 1250 + 50000 + 0 + 700])
    const nothing = await q({ filter: { op: 'cmp', cmp: '>', ref: { column: 'fare' }, value: 1e6 } })
    const none = await computeVector(src('a.parquet', 'parquet'), nothing, { countFiltered: true })
    expect(signed(none.vector)).toEqual([0, 0, 0, 0, 0, 0])
    expect(none.stats).toMatchObject({ rows: 5, filtered: 5, matched: 0 })
    const run = await computeVector(src('a.parquet', 'parquet'), nothing)
    expect(signed(run.vector)).toEqual([0, 0, 0, 0, 0, 0])
    expect(run.stats).toMatchObject({ rows: null, filtered: null, matched: 0, outOfDomain: 0 })
  })
})

describe('hostile names and values', () => {
  it('filter and category literals are bound parameters, never SQL text', async () => {
    const hostile = "x'); DROP TABLE t; --"
    const r = await computeVector(src('w.duckdb', 'duckdb', { table: 'trips' }), await q({ filter: { op: 'in', ref: { column: 'weird' }, values: [hostile, 'y'], negated: false } }))
    expect(signed(r.vector)).toEqual([1, 1250, 1, 50000, 0, 0])
    expect((await inspectDataset(src('w.duckdb', 'duckdb', { table: 'trips' }))).rows).toBe(5)
    const schema = new Map([['zone', 'INTEGER'], ['weird', 'VARCHAR'], ['fare', 'DOUBLE']])
    const c = compileQuery(await q({
      filter: { op: 'cmp', cmp: '=', ref: { column: 'weird' }, value: hostile },
      group_by: [{ name: 'w', domain: { kind: 'categories', ref: { column: 'weird' }, values: ["a'--", 'b;'] } }]
    }), schema, 'src')
    expect(c.sql).not.toContain('DROP')
    expect(c.sql).not.toContain("a'--")
    expect(c.params).toContain(hostile)
  })

  it('a column named with ; and -- is quoted and works; a double quote is refused by the validator and escaped by the compiler', async () => {
    const r = await computeVector(src('a.parquet', 'parquet'), await q({ filter: { op: 'is_null', ref: { column: 'semi;-- col' }, negated: true } }))
    expect(signed(r.vector)).toEqual(EXPECTED)
    await expect(q({ filter: { op: 'is_null', ref: { column: 'a" OR 1=1 --' }, negated: true } })).rejects.toThrow(/no double quotes/)
    const c = compileQuery(await q({ group_by: [], aggregates: [{ name: 'n', kind: 'count' }] }), new Map([['x"y', 'INTEGER']]), 'src')
    expect(c.sql).not.toContain('x"y')
  })

  it('a number compared with a text column compares as text', async () => {
    await sql(`COPY (SELECT * FROM (VALUES ('1', 1), ('x', 2), ('2', 3)) t(code, zone)) TO '${join(dir, 'text.parquet')}' (FORMAT parquet)`)
    const r = await computeVector(src('text.parquet', 'parquet'), await q({
      aggregates: [{ name: 'n', kind: 'count' }],
      filter: { op: 'in', ref: { column: 'code' }, values: [1, 'x'], negated: false }
    }))
    expect(signed(r.vector)).toEqual([1, 1, 0])
  })
})

describe('time functions in the query time zone', () => {
  beforeAll(async () => {
    // instants 2024-03-10 06:30Z (01:30 EST, Sunday) and 07:30Z (03:30 EDT after the DST jump), 2024-03-11 03:00Z (Sunday 23:00 EDT)
    await sql(`COPY (SELECT * FROM (VALUES (TIMESTAMPTZ '2024-03-10 06:30:00+00'), (TIMESTAMPTZ '2024-03-10 07:30:00+00'), (TIMESTAMPTZ '2024-03-11 03:00:00+00')) t(pickup)) TO '${join(dir, 'tz.parquet')}' (FORMAT parquet)`)
  })
  const count = [{ name: 'n', kind: 'count' as const }]
  const hours = (v: BigUint64Array): number[] => signed(v).flatMap((n, h) => Array(n).fill(h))

  it('TIMESTAMPTZ: hour, dow and date are taken in the query time zone', async () => {
    const ny = await computeVector(src('tz.parquet', 'parquet'), await q({ timezone: 'America/New_York', group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'pickup' } }], aggregates: count }))
    expect(hours(ny.vector)).toEqual([1, 3, 23])
    const utc = await computeVector(src('tz.parquet', 'parquet'), await q({ timezone: 'UTC', group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'pickup' } }], aggregates: count }))
    expect(hours(utc.vector)).toEqual([3, 6, 7])
    const dow = await computeVector(src('tz.parquet', 'parquet'), await q({ timezone: 'America/New_York', group_by: [{ name: 'd', domain: { kind: 'day_of_week', column: 'pickup' } }], aggregates: count }))
    expect(signed(dow.vector)).toEqual([0, 0, 0, 0, 0, 0, 3]) // all Sunday in New York (ISO 7)
    const date = await computeVector(src('tz.parquet', 'parquet'), await q({ timezone: 'Asia/Tokyo', group_by: [{ name: 'd', domain: { kind: 'date', column: 'pickup', from: '2024-03-10', to: '2024-03-11' } }], aggregates: count, filter: { op: 'cmp', cmp: '=', ref: { column: 'pickup', fn: 'date' }, value: '2024-03-10' } }))
    expect(signed(date.vector)).toEqual([2, 0]) // 15:30 and 16:30 on the 10th in Tokyo; the third is the 11th
  })

  it('naive TIMESTAMP is wall time already: the time zone does not shift it', async () => {
    const gb: GroupBy[] = [{ name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }]
    const a = await computeVector(src('a.parquet', 'parquet'), await q({ timezone: 'Asia/Tokyo', group_by: gb, aggregates: count }))
    expect(hours(a.vector)).toEqual([7, 8, 8, 17, 17])
  })

  it('hour categories, bins, ISO dow filter (Sunday = 7) and date domain', async () => {
    const gb: GroupBy[] = [
      { name: 'h', domain: { kind: 'categories', ref: { column: 'ts', fn: 'hour' }, values: [7, 8, 17] } },
      { name: 'f', domain: { kind: 'bins', ref: { column: 'fare' }, edges: [0, 10, 1000], closed: 'left' } }
    ]
    const r = await computeVector(src('a.parquet', 'parquet'), await q({ group_by: gb, aggregates: count, filter: { op: 'between', ref: { column: 'ts', fn: 'dow' }, low: 1, high: 5, negated: false } }))
    // weekday rows: (7h, 12.5 → bin 1), (8h, 600 → bin 1), (17h, NULL → out), (17h, 7 → bin 0)
    expect(signed(r.vector)).toEqual([0, 1, 0, 1, 1, 0])
    const sun = await computeVector(src('a.parquet', 'parquet'), await q({ group_by: [], aggregates: count, filter: { op: 'cmp', cmp: '=', ref: { column: 'ts', fn: 'dow' }, value: 7 } }))
    expect(signed(sun.vector)).toEqual([1])
    const d = await computeVector(src('a.parquet', 'parquet'), await q({ group_by: [{ name: 'd', domain: { kind: 'date', column: 'ts', from: '2024-03-04', to: '2024-03-05' } }], aggregates: count }))
    expect(signed(d.vector)).toEqual([2, 2])
  })

  it('bins closed right include the upper edge', async () => {
    const r = await computeVector(src('a.parquet', 'parquet'), await q({ group_by: [{ name: 'f', domain: { kind: 'bins', ref: { column: 'fare' }, edges: [7, 12.5, 600], closed: 'right' } }], aggregates: count }))
    expect(signed(r.vector)).toEqual([1, 1]) // 7 is excluded, 12.5 in the first, 600 in the second
  })
})

describe('data errors (exit 6, one line)', () => {
  const bad = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
    const e = await rejection(p)
    expect(e).toBeInstanceOf(DataError)
    expect(e.name).toBe('DataError')
    expect(e.message).toMatch(re)
    expect(e.message).not.toContain('\n')
  }
  it('missing file', async () => bad(computeVector(src('nope.parquet', 'parquet'), await q()), /nope\.parquet does not exist: fix datasets\.trips\.path in config\.yaml/))
  it('glob without matches', async () => bad(computeVector(src('none*.parquet', 'parquet'), await q()), /no file matches: fix datasets\.trips\.path/))
  it('unreadable file', async () => {
    writeFileSync(join(dir, 'garbage.parquet'), 'not parquet')
    await bad(computeVector(src('garbage.parquet', 'parquet'), await q()), /garbage\.parquet/)
    writeFileSync(join(dir, 'locked.csv'), csv)
    chmodSync(join(dir, 'locked.csv'), 0)
    if (process.getuid?.() !== 0) await bad(inspectDataset(src('locked.csv', 'csv')), /locked\.csv/)
  })
  it('missing table in a duckdb file', async () => bad(computeVector(src('w.duckdb', 'duckdb', { table: 'nope' }), await q()), /fix datasets\.trips\.table/))
  it('missing column', async () => bad(computeVector(src('a.parquet', 'parquet'), await q({ aggregates: [{ name: 's', kind: 'sum', column: 'tip', scale: 1, clip: [0, 1] }] })), /column "tip".*is not in dataset "trips"/))
  it('sum over text', async () => bad(computeVector(src('a.parquet', 'parquet'), await q({ aggregates: [{ name: 's', kind: 'sum', column: 'driver', scale: 1, clip: [0, 1] }] })), /column "driver" has type VARCHAR; aggregate "s" \(sum\) needs a numeric column/))
  it('hour() of a non-timestamp', async () => bad(computeVector(src('a.parquet', 'parquet'), await q({ group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'driver' } }] })), /needs a TIMESTAMP or DATE column/))
  it('bins over text', async () => bad(computeVector(src('a.parquet', 'parquet'), await q({ group_by: [{ name: 'b', domain: { kind: 'bins', ref: { column: 'driver' }, edges: [0, 1], closed: 'left' } }] })), /bins needs a numeric column/))
  it('cancellation before or during the scan rejects (DuckDB is interrupted)', async () => {
    const ac = new AbortController()
    ac.abort()
    await bad(computeVector(src('a.parquet', 'parquet'), await q(), { signal: ac.signal }), /cancelled/)
    await sql(`COPY (SELECT CAST(i % 5 AS INTEGER) AS zone, CAST(i % 977 AS DOUBLE) AS fare, 'x' || (i % 1000003) AS driver FROM range(4000000) t(i)) TO '${join(dir, 'big.parquet')}' (FORMAT parquet)`)
    const mid = new AbortController()
    const t0 = performance.now()
    const p = computeVector(src('big.parquet', 'parquet'), await q({ aggregates: [{ name: 'd', kind: 'count_distinct', column: 'driver' }] }), { signal: mid.signal })
    setTimeout(() => mid.abort(), 30)
    await bad(p, /cancelled/)
    expect(performance.now() - t0).toBeLessThan(2000) // the full scan takes seconds here
  }, 20_000)
})

describe('fixed point', () => {
  it('rounds half away from zero exactly like layout.ts fixedPoint, record by record', async () => {
    const fares = [0.125, -0.125, 2.5, -2.5, 0.5, -0.5, 1.5, 0.005, 1.005, -1.005, 2.675, 0.49999999999999994, 100000.5, -4503599627.5, 1e-9]
    writeFileSync(join(dir, 'half.csv'), 'zone,fare\n' + fares.map((f) => `1,${f}`).join('\n') + '\n')
    const s = src('half.csv', 'csv', { columns: { zone: 'INTEGER', fare: 'DOUBLE' } })
    for (const scale of [1, 2, 100, 1000, 0.1]) {
      for (const f of fares) {
        const r = await computeVector(s, await q({ group_by: [], aggregates: [{ name: 's', kind: 'sum', column: 'fare', scale, clip: [-1e10, 1e10] }], max_rows_per_provider: 10, filter: { op: 'cmp', cmp: '=', ref: { column: 'fare' }, value: f } }))
        expect([f, scale, BigInt.asIntN(64, r.vector[0] as bigint)]).toEqual([f, scale, fixedPoint(f, scale)])
      }
    }
  })
})

describe('column types', () => {
  it('DECIMAL and BIGINT columns are read as binary64 before clip and scale, like the reference', async () => {
    const vals = ['1.005', '-1.005', '2.675', '0.125', '123456.785', '-0.5']
    await sql(`COPY (SELECT 1 AS zone, CAST(v AS DECIMAL(18,3)) AS fare, CAST(round(CAST(v AS DOUBLE) * 1000) AS BIGINT) AS milli FROM (VALUES ${vals.map((v) => `('${v}')`).join(', ')}) t(v)) TO '${join(dir, 'dec.parquet')}' (FORMAT parquet)`)
    for (const scale of [1, 100, 1000]) {
      const { vector } = await computeVector(src('dec.parquet', 'parquet'), await q({ group_by: [], aggregates: [
        { name: 'f', kind: 'sum', column: 'fare', scale, clip: [-1e6, 1e6] },
        { name: 'm', kind: 'sum', column: 'milli', scale, clip: [-1e9, 1e9] }
      ] }))
      expect(BigInt.asIntN(64, vector[0] as bigint)).toBe(vals.reduce((a, v) => a + fixedPoint(Number(v), scale), 0n))
      expect(BigInt.asIntN(64, vector[1] as bigint)).toBe(vals.reduce((a, v) => a + fixedPoint(Math.round(Number(v) * 1000), scale), 0n))
    }
  })
})

describe('resources', () => {
  it('leaves no file behind: no spill directory after closeEngine, nothing new next to the data', async () => {
    const before = readdirSync(dir).sort()
    await computeVector(src('a.parquet', 'parquet'), await q())
    const spill = await engineTempDir()
    expect(spill).toMatch(/mpc-duckdb-/)
    await closeEngine()
    expect(existsSync(spill as string)).toBe(false)
    expect(readdirSync(dir).sort()).toEqual(before)
  })
})

describe('time zones without ICU', () => {
  it('a TIMESTAMPTZ column with a non-UTC zone is a DataError when the build cannot convert zones', async () => {
    const schema = new Map([['at', 'TIMESTAMP WITH TIME ZONE'], ['zone', 'INTEGER'], ['fare', 'DOUBLE']])
    const ny = await q({ timezone: 'America/New_York', group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'at' } }] })
    expect(() => compileQuery(ny, schema, 'src', false)).toThrow(/no ICU extension/)
    expect(compileQuery({ ...ny, timezone: 'UTC' }, schema, 'src', false).sql).toContain('CAST("at" AS TIMESTAMP)')
    expect(compileQuery(ny, schema, 'src', true).sql).toContain('timezone($')
  })
})

// negotiation.md §3.7: after signing, no row value changes what the others observe
describe('cleaning and clamping never abort (issue 14 §1)', () => {
  it('a value that does not convert to its declared type is NULL, not an error', async () => {
    const { vector, stats } = await computeVector(src('trips.csv', 'csv', { columns: { ...CSV_COLUMNS, driver: 'INTEGER' } }), await q({ aggregates: [{ name: 'd', kind: 'count_distinct', column: 'driver' }] }))
    expect(signed(vector)).toEqual([0, 0, 0])
    expect(stats.matched).toBe(4)
  })
  it('malformed CSV lines (too many or too few fields, broken quotes) are skipped and counted locally', async () => {
    writeFileSync(join(dir, 'broken.csv'), 'zone,fare\n1,2\n1,3,9,9\n2\n3,5\n"1,4\n')
    const s = src('broken.csv', 'csv', { columns: { zone: 'INTEGER', fare: 'DOUBLE' } })
    const { vector, stats } = await computeVector(s, await q())
    expect(signed(vector)).toEqual([1, 200, 0, 0, 1, 500])
    expect(stats.nullsSkipped).toBe(0)
    const { diagnoseCleaning } = await import('../../src/data/diagnose.ts')
    expect((await diagnoseCleaning(s, await q())).rejectedLines).toBe(3)
  })
  it('NaN is skipped like NULL; ±infinity is clipped; infinite timestamps are NULL', async () => {
    await sql(`COPY (SELECT * FROM (VALUES (1, 'nan'::DOUBLE, TIMESTAMP '2024-03-04 07:00:00'), (1, 'inf'::DOUBLE, 'infinity'::TIMESTAMP), (2, '-inf'::DOUBLE, '-infinity'::TIMESTAMP), (2, 1e308, NULL)) t(zone, fare, ts)) TO '${join(dir, 'nan.parquet')}' (FORMAT parquet)`)
    const { vector, stats } = await computeVector(src('nan.parquet', 'parquet'), await q())
    expect(signed(vector)).toEqual([2, 50000, 2, 50000, 0, 0])
    expect(stats).toMatchObject({ nullsSkipped: 1, clipped: 3 })
    const h = await computeVector(src('nan.parquet', 'parquet'), await q({ group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }], aggregates: [{ name: 'n', kind: 'count' }] }))
    expect(h.stats).toMatchObject({ matched: 1, outOfDomain: 3 })
  })
  it('rows outside a domain are dropped and counted, never an error', async () => {
    const { vector, stats } = await computeVector(src('a.parquet', 'parquet'), await q())
    expect(signed(vector)).toEqual(EXPECTED)
    expect(stats.outOfDomain).toBe(1)
  })
  it('more matched rows in a cell than max_rows_per_provider: each cell is clamped, a mean scales sum and count together', async () => {
    await sql(`COPY (SELECT CAST(1 + (i % 2) AS INTEGER) AS zone, CAST(i AS DOUBLE) AS fare FROM range(10) t(i)) TO '${join(dir, 'many.parquet')}' (FORMAT parquet)`)
    // zone 1: fares 0,2,4,6,8 (5 rows); zone 2: 1,3,5,7,9
    const query = await q({ max_rows_per_provider: 3, aggregates: [{ name: 'n', kind: 'count' }, { name: 's', kind: 'sum', column: 'fare', scale: 1, clip: [0, 2] }, { name: 'm', kind: 'mean', column: 'fare', scale: 1, clip: [0, 100] }, { name: 'd', kind: 'count_distinct', column: 'fare' }] })
    const { vector, stats } = await computeVector(src('many.parquet', 'parquet'), query)
    // zone 1: n 5→3; s = 0+2+2+2+2 = 8 → 3·2 = 6; mean sum 20·3/5 = 12, count 5→3; distinct 5→3
    // zone 2: s = 1+2+2+2+2 = 9 → 6; mean sum 25·3/5 = 15
    expect(signed(vector)).toEqual([3, 6, 12, 3, 3, 3, 6, 15, 3, 3, 0, 0, 0, 0, 0])
    expect(stats.clamped).toBe(10)
    expect(stats.matched).toBe(10)
  })
  it('a literal that does not fit the column type makes the comparison NULL (the acceptance check refuses it before signing)', async () => {
    const { vector } = await computeVector(src('a.parquet', 'parquet'), await q({ filter: { op: 'cmp', cmp: '<', ref: { column: 'ts' }, value: 'yesterday' } }))
    expect(signed(vector)).toEqual([0, 0, 0, 0, 0, 0])
  })
})

describe('a failure after signing, for the local log', () => {
  it('is reduced to a fixed category: no message text, no value, no path', async () => {
    const { failureCategory, COMPUTE_FAILED } = await import('../../src/data/errors.ts')
    expect(failureCategory(new DataError('dataset "trips": /secret/path/x.csv does not exist: fix …'))).toBe('the source could not be read')
    expect(failureCategory(new Error('Out of Memory Error: failed to allocate'))).toBe('out of memory')
    expect(failureCategory(new DataError('dataset "trips": computation cancelled (the run was stopped)'))).toBe('cancelled')
    expect(failureCategory(new Error('Invalid Input Error: value 31337.77 in row 5'))).toBe('an error of the local data engine')
    expect(COMPUTE_FAILED).toBe('the provider could not compute its vector')
  })
})

describe('the per-cell clamp and differential privacy (privacy.md §3)', () => {
  it('one row more moves a clamped mean\'s sum slot by at most the sensitivity charged for it (twice maxAbs for a symmetric clip)', async () => {
    const query = await q({ aggregates: [{ name: 'm', kind: 'mean', column: 'fare', scale: 1, clip: [-50, 50] }], max_rows_per_provider: 1000 })
    const charged = slotSensitivities(dpAggregates(query.aggregates), { kind: 'row' })
    const cell = (rows: number[]): bigint[] => [BigInt(rows.reduce((a, b) => a + b, 0)), BigInt(rows.length)]
    const moved = [0, 0]
    for (const n of [1, 500, 999, 1000, 1001, 1500, 5000]) {
      for (const [base, v] of [[50, -50], [-50, 50], [50, 50], [0, 50], [17, -33]] as const) {
        const before = new BigUint64Array(2)
        const after = new BigUint64Array(2)
        clampCell(query, cell(Array<number>(n).fill(base)), before, 0)
        clampCell(query, cell([...Array<number>(n).fill(base), v]), after, 0)
        for (const s of [0, 1]) moved[s] = Math.max(moved[s] as number, Math.abs(Number(BigInt.asIntN(64, after[s] as bigint) - BigInt.asIntN(64, before[s] as bigint))))
      }
    }
    expect(moved[0]).toBeGreaterThan(50) // the clamp moves the sum by more than maxAbs: charging maxAbs was too little
    expect(moved[0]).toBeLessThanOrEqual(charged[0]?.l1 as number)
    expect(moved[1]).toBeLessThanOrEqual(charged[1]?.l1 as number)
  })
})
