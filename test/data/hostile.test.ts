// Property (issue 14 §1, negotiation.md §3.7): after signing, no row value changes what the other
// parties observe. Random hostile tables — NULLs, NaN, ±infinity, huge values, wrong-type strings,
// out-of-domain values, malformed lines, cells far above max_rows_per_provider — never make the
// vector computation throw, and always give the agreed layout with every slot inside the bound the
// layout assumes for one provider.
import { afterAll, describe, expect, it } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { computeVector, closeEngine } from '../../src/data/compute.ts'
import { layoutOf, slotBounds } from '../../src/query/layout.ts'
import type { Aggregate, Domain, FilterExpr, GroupBy } from '../../src/query/types.ts'
import { query, source, sql, tmp } from './fixtures.ts'

const dir = tmp()
afterAll(async () => {
  await closeEngine()
  rmSync(dir, { recursive: true, force: true })
})

const HOSTILE = ['', 'NaN', 'nan', 'inf', '-inf', 'Infinity', '-Infinity', '1e400', '-1e400', '1e308', '-1e308', '9223372036854775808',
  'abc', '"a,b"', '"x""y"', ' 7 ', '0x10', '2024-13-45', 'infinity', '1.5', '-0', 'true', '\u00e9']
const cell = fc.oneof(fc.constantFrom(...HOSTILE), fc.integer({ min: -5, max: 30 }).map(String), fc.double().map(String),
  fc.integer({ min: 0, max: 40 * 86400 }).map((s) => new Date(Date.UTC(2024, 2, 1) + s * 1000).toISOString().slice(0, 19).replace('T', ' ')))
// a line: usually 4 fields, sometimes too few or too many, sometimes a broken quote
const line = fc.oneof(
  { weight: 12, arbitrary: fc.array(cell, { minLength: 4, maxLength: 4 }).map((f) => f.join(',')) },
  { weight: 1, arbitrary: fc.array(cell, { minLength: 0, maxLength: 7 }).map((f) => f.join(',')) },
  { weight: 1, arbitrary: fc.constant('"unterminated,1,2,3') }
)

const domain: fc.Arbitrary<Domain> = fc.oneof(
  fc.record({ min: fc.integer({ min: -3, max: 10 }), w: fc.integer({ min: 0, max: 5 }) }).map(({ min, w }) => ({ kind: 'int_range', ref: { column: 'zone' }, min, max: min + w }) as Domain),
  fc.constant<Domain>({ kind: 'hour_of_day', column: 'ts' }),
  fc.constant<Domain>({ kind: 'date', column: 'ts', from: '2024-03-01', to: '2024-03-07' }),
  fc.constant<Domain>({ kind: 'bins', ref: { column: 'fare' }, edges: [-1e300, 0, 10, 1e300], closed: 'left' }),
  fc.constant<Domain>({ kind: 'categories', ref: { column: 'label' }, values: ['abc', 'NaN', ' ', 'x"y'] })
)
const aggregate: fc.Arbitrary<Omit<Aggregate, 'name'>> = fc.oneof(
  fc.constant({ kind: 'count' as const }),
  fc.constantFrom('label', 'fare', 'ts').map((column) => ({ kind: 'count_distinct' as const, column })),
  fc.record({ kind: fc.constantFrom('sum' as const, 'mean' as const), column: fc.constantFrom('fare', 'zone'), lo: fc.integer({ min: -1000, max: 10 }), span: fc.integer({ min: 0, max: 1e6 }), scale: fc.constantFrom(1, 100, 1e6, 0.001) })
    .map(({ kind, column, lo, span, scale }) => ({ kind, column, scale, clip: [lo, lo + span] as [number, number] }))
)
const filter: fc.Arbitrary<FilterExpr | null> = fc.oneof(
  fc.constant(null),
  fc.integer({ min: -10, max: 20 }).map((v) => ({ op: 'cmp', cmp: '>', ref: { column: 'fare' }, value: v }) as FilterExpr),
  fc.constant<FilterExpr>({ op: 'cmp', cmp: '>=', ref: { column: 'ts' }, value: '2024-03-03' }),
  fc.constant<FilterExpr>({ op: 'cmp', cmp: '=', ref: { column: 'zone' }, value: 'not a number' }),
  fc.constant<FilterExpr>({ op: 'is_null', ref: { column: 'label' }, negated: true })
)

const COLUMNS = { zone: 'INTEGER', fare: 'DOUBLE', ts: 'TIMESTAMP', label: 'VARCHAR' }

describe('property: hostile tables never make the vector computation throw (negotiation.md §3.7)', () => {
  let run = 0
  it('random hostile CSV and Parquet (NaN, ±inf, huge, wrong types, malformed lines), random queries and small max_rows', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(line, { maxLength: 80 }), fc.array(domain, { maxLength: 2 }), fc.array(aggregate, { minLength: 1, maxLength: 4 }), filter,
      fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 200 }),
      async (lines, domains, aggs, f, maxRows, repeat) => {
        const group_by: GroupBy[] = domains.map((d, i) => ({ name: `g${i}`, domain: d }))
        const aggregates = aggs.map((a, i) => ({ ...a, name: `a${i}` }) as Aggregate)
        const q = await query({ group_by, aggregates, filter: f, max_rows_per_provider: maxRows })
        const file = join(dir, `h${run++}.csv`)
        // `repeat` copies: many rows per cell, far above max_rows_per_provider
        writeFileSync(file, 'zone,fare,ts,label\n' + Array.from({ length: repeat }, () => lines.join('\n')).join('\n') + '\n')
        const csv = source(dir, file, 'csv', { columns: COLUMNS })
        // the same rows as Parquet with real NaN / ±inf doubles and ±infinity timestamps
        const pq = file.replace(/\.csv$/, '.parquet')
        await sql(`COPY (SELECT TRY_CAST(zone AS INTEGER) AS zone, CASE WHEN fare ILIKE '%nan%' THEN 'nan'::DOUBLE WHEN fare = 'inf' THEN 'inf'::DOUBLE WHEN fare = '-inf' THEN '-inf'::DOUBLE ELSE TRY_CAST(fare AS DOUBLE) END AS fare,
          CASE WHEN ts = 'infinity' THEN 'infinity'::TIMESTAMP ELSE TRY_CAST(ts AS TIMESTAMP) END AS ts, label
          FROM read_csv('${file}', header = true, auto_detect = false, columns = {'zone': 'VARCHAR', 'fare': 'VARCHAR', 'ts': 'VARCHAR', 'label': 'VARCHAR'}, ignore_errors = true)) TO '${pq}' (FORMAT parquet)`)
        const layout = layoutOf(q)
        const bounds = slotBounds(q, 1)
        for (const s of [csv, source(dir, pq, 'parquet')]) {
          const { vector } = await computeVector(s, q) // must not throw
          expect(vector.length).toBe(layout.length)
          vector.forEach((v, i) => {
            const b = bounds[i % layout.slots.length]
            const x = layout.slots[i % layout.slots.length]?.signed ? BigInt.asIntN(64, v) : v
            expect(b && x >= b.min && x <= b.max, `slot ${i} = ${x}`).toBe(true)
          })
        }
      }
    ), { numRuns: Number(process.env.FUZZ_RUNS ?? 40) })
  }, 180_000)

  it('random hostile newline-delimited JSON (any JSON value per field, non-objects, broken lines) never throws', async () => {
    const field = fc.oneof(fc.jsonValue(), cell, fc.constantFrom(1e308, -1e308, 0, 3, 2.5))
    const jline = fc.oneof(
      { weight: 8, arbitrary: fc.record({ zone: field, fare: field, ts: field, label: field }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
      { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
      { weight: 1, arbitrary: fc.constantFrom('{bad json', '', '{"zone": 1, "zone": 2}', '{"fare": 1e999}', '\u0000') }
    )
    await fc.assert(fc.asyncProperty(fc.array(jline, { maxLength: 60 }), fc.array(domain, { maxLength: 2 }), fc.array(aggregate, { minLength: 1, maxLength: 3 }), async (lines, domains, aggs) => {
      const q = await query({ group_by: domains.map((d, i) => ({ name: `g${i}`, domain: d })), aggregates: aggs.map((a, i) => ({ ...a, name: `a${i}` }) as Aggregate), max_rows_per_provider: 2 })
      const file = join(dir, `j${run++}.ndjson`)
      writeFileSync(file, lines.join('\n') + '\n')
      const { vector } = await computeVector(source(dir, file, 'json', { columns: COLUMNS }), q)
      expect(vector.length).toBe(layoutOf(q).length)
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 30) })
  }, 120_000)

  it('a million rows in one cell with max_rows_per_provider 1 gives the clamped layout, no error', async () => {
    const file = join(dir, 'million.parquet')
    await sql(`COPY (SELECT 1 AS zone, CASE WHEN i % 3 = 0 THEN 'nan'::DOUBLE WHEN i % 3 = 1 THEN 1e308 ELSE NULL END AS fare, NULL::TIMESTAMP AS ts, 'abc' AS label FROM range(1000000) t(i)) TO '${file}' (FORMAT parquet)`)
    const q = await query({ max_rows_per_provider: 1, group_by: [{ name: 'z', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 2 } }], aggregates: [{ name: 'n', kind: 'count' }, { name: 'm', kind: 'mean', column: 'fare', scale: 100, clip: [0, 500] }, { name: 's', kind: 'sum', column: 'fare', scale: 1, clip: [-5, 5] }] })
    const { vector, stats } = await computeVector(source(dir, file, 'parquet'), q)
    expect(Array.from(vector, Number)).toEqual([1, 50000, 1, 5, 0, 0, 0, 0])
    expect(stats).toMatchObject({ matched: 1_000_000, nullsSkipped: 2 * 666_667 })
  }, 60_000)
})
