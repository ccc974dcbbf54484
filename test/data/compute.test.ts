// The data layer: every source format, every data error (DataError → exit 6), hostile names and
// values, and a property test: the vector equals an independent computation in TypeScript.
import { describe, expect, it, beforeAll } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { DuckDBInstance } from '@duckdb/node-api'
import { computeVector, inspectDataset } from '../../src/data/compute.ts'
import { validateDatasets } from '../../src/data/source.ts'
import { DataError } from '../../src/data/errors.ts'
import { validateQuery } from '../../src/query/validate.ts'
import { fixedPoint, layoutOf } from '../../src/query/layout.ts'
import type { Aggregate, GroupBy, Query } from '../../src/query/types.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { makeParties } from '../helpers/parties.ts'

const dir = mkdtempSync(join(tmpdir(), 'mpc-data-'))
let participants: { buyer: string; providers: string[] }

interface Row { zone: number | null; ts: string; fare: number | null; driver: string; weird: string }
const rows: Row[] = [
  { zone: 1, ts: '2024-03-04 07:10:00', fare: 12.5, driver: 'a', weird: "x'); DROP TABLE t; --" },
  { zone: 2, ts: '2024-03-04 08:20:00', fare: 600, driver: 'b', weird: 'y' },
  { zone: 2, ts: '2024-03-09 08:50:00', fare: -3.25, driver: 'a', weird: 'z' },
  { zone: 3, ts: '2024-03-05 17:00:00', fare: null, driver: 'c', weird: 'x' },
  { zone: 9, ts: '2024-03-05 17:30:00', fare: 7, driver: 'c', weird: 'x' }
]

async function sql(s: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  await c.run(s)
  c.closeSync()
  db.closeSync()
}

function csv(rs: Row[]): string {
  return 'zone,ts,fare,driver,weird,"semi;-- col"\n' + rs.map((r) => `${r.zone ?? ''},${r.ts},${r.fare ?? ''},${r.driver},"${r.weird.replace(/"/g, '""')}",1`).join('\n') + '\n'
}

function q(over: Partial<Query> = {}): Query {
  return validateQuery({
    version: 1, id: 'q', title: 't', dataset: 'trips', timezone: 'UTC', filter: null,
    group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 3 } }],
    aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 100, clip: [0, 500], nulls: 'skip' }],
    out_of_domain: 'drop', max_rows_per_provider: 1000, participants, min_providers: 3, output: [participants.buyer],
    timeouts: { negotiate_s: 5, compute_s: 5, confirm_s: 5 }, ...over
  })
}

const src = (file: string, format: string, extra: Record<string, unknown> = {}) => validateDatasets({ trips: { path: file, format, ...extra } }, dir).trips!
const num = (v: BigUint64Array): number[] => Array.from(v, (x) => Number(BigInt.asIntN(64, x)))

beforeAll(async () => {
  const p = await makeParties(3)
  participants = { buyer: p.buyer.peerId, providers: p.providers.map((x) => x.peerId).sort(comparePeers) }
  writeFileSync(join(dir, 'trips.csv'), csv(rows))
  const from = `read_csv('${join(dir, 'trips.csv')}', header = true, types = {'ts': 'TIMESTAMP'})`
  await sql(`COPY (SELECT * FROM ${from}) TO '${join(dir, 'a.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from} LIMIT 2) TO '${join(dir, 'part1.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from} OFFSET 2) TO '${join(dir, 'part2.parquet')}' (FORMAT parquet)`)
  await sql(`COPY (SELECT * FROM ${from}) TO '${join(dir, 'a.ndjson')}' (FORMAT json)`)
  await sql(`ATTACH '${join(dir, 'w.duckdb')}' AS w; CREATE TABLE w.trips AS SELECT * FROM ${from}`)
})

// zone 1: 1 row, fare 1250; zone 2: 2 rows, fares clip(600)=500→50000 and clip(-3.25)=0; zone 3: 1 row, NULL fare
const EXPECTED = [1, 1250, 2, 50000, 1, 0]

describe('sources', () => {
  it.each([
    ['csv', 'trips.csv', { columns: { ts: 'TIMESTAMP' } }],
    ['parquet', 'a.parquet', {}],
    ['parquet glob', 'part*.parquet', {}],
    ['json', 'a.ndjson', {}],
    ['duckdb', 'w.duckdb', { table: 'trips' }]
  ])('%s', async (kind, file, extra) => {
    const format = kind.startsWith('parquet') ? 'parquet' : kind
    const { vector, stats } = await computeVector(src(file, format, extra), q())
    expect(num(vector)).toEqual(EXPECTED)
    expect(stats).toMatchObject({ rows: 5, matched: 4, outOfDomain: 1, nullsSkipped: 1, clipped: 2, filtered: 0 })
  })

  it('inspect lists the schema and rows', async () => {
    const info = await inspectDataset(src('a.parquet', 'parquet'))
    expect(info.rows).toBe(5)
    expect(info.columns.map((c) => c.name)).toContain('semi;-- col')
  })
})

describe('filters, domains and time', () => {
  it('a filter with hostile literal values is bound, not spliced', async () => {
    const r = await computeVector(src('a.parquet', 'parquet'), q({ filter: { op: 'in', ref: { column: 'weird' }, values: ["x'); DROP TABLE t; --", 'y'], negated: false } }))
    expect(num(r.vector)).toEqual([1, 1250, 1, 50000, 0, 0])
    expect((await inspectDataset(src('a.parquet', 'parquet'))).rows).toBe(5)
  })

  it('a hostile column name is quoted, and works; one with a double quote is refused', async () => {
    const r = await computeVector(src('a.parquet', 'parquet'), q({ filter: { op: 'is_null', ref: { column: 'semi;-- col' }, negated: true } }))
    expect(num(r.vector)).toEqual(EXPECTED)
    expect(() => q({ filter: { op: 'is_null', ref: { column: 'a" OR 1=1 --' }, negated: true } })).toThrow(/no double quotes/)
  })

  it('hour / dow / date functions, categories and bins', async () => {
    const gb: GroupBy[] = [
      { name: 'h', domain: { kind: 'categories', ref: { column: 'ts', fn: 'hour' }, values: [7, 8, 17] } },
      { name: 'f', domain: { kind: 'bins', ref: { column: 'fare' }, edges: [0, 10, 1000], closed: 'left' } }
    ]
    const r = await computeVector(src('a.parquet', 'parquet'), q({ group_by: gb, aggregates: [{ name: 'n', kind: 'count' }], filter: { op: 'between', ref: { column: 'ts', fn: 'dow' }, low: 1, high: 5, negated: false } }))
    // weekday rows: (7h, 12.5 → bin 1), (8h, 600 → bin 1), (17h, NULL → out), (17h, 7 → bin 0)
    expect(num(r.vector)).toEqual([0, 1, 0, 1, 1, 0])
    const d = await computeVector(src('a.parquet', 'parquet'), q({ group_by: [{ name: 'd', domain: { kind: 'date', column: 'ts', from: '2024-03-04', to: '2024-03-05' } }], aggregates: [{ name: 'n', kind: 'count' }] }))
    expect(num(d.vector)).toEqual([2, 2])
    const tz = await computeVector(src('a.parquet', 'parquet'), q({ group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }], aggregates: [{ name: 'n', kind: 'count' }] }))
    expect(num(tz.vector)[17]).toBe(2)
  })
})

describe('data errors (exit 6)', () => {
  const bad = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
    const e = await p.then(() => null, (x: unknown) => x)
    expect(e).toBeInstanceOf(DataError)
    expect((e as Error).message).toMatch(re)
    expect((e as Error).message.split('\n')).toHaveLength(1)
  }
  it('missing file', () => bad(computeVector(src('nope.parquet', 'parquet'), q()), /does not exist/))
  it('unreadable file', () => {
    writeFileSync(join(dir, 'garbage.parquet'), 'not parquet')
    return bad(computeVector(src('garbage.parquet', 'parquet'), q()), /garbage\.parquet/)
  })
  it('missing column', () => bad(computeVector(src('a.parquet', 'parquet'), q({ aggregates: [{ name: 's', kind: 'sum', column: 'tip', scale: 1, clip: [0, 1], nulls: 'skip' }] })), /column "tip".*not in dataset/))
  it('wrong type', () => bad(computeVector(src('a.parquet', 'parquet'), q({ aggregates: [{ name: 's', kind: 'sum', column: 'driver', scale: 1, clip: [0, 1], nulls: 'skip' }] })), /type VARCHAR/))
  it('hour() of a non-timestamp', () => bad(computeVector(src('a.parquet', 'parquet'), q({ group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'driver' } }] })), /TIMESTAMP/))
  it('NULL where the query says fail', () => bad(computeVector(src('a.parquet', 'parquet'), q({ aggregates: [{ name: 'fare', kind: 'sum', column: 'fare', scale: 1, clip: [0, 1], nulls: 'fail' }] })), /NULL/))
  it('NaN', async () => {
    await sql(`COPY (SELECT 1 AS zone, 'nan'::DOUBLE AS fare) TO '${join(dir, 'nan.parquet')}' (FORMAT parquet)`)
    await bad(computeVector(src('nan.parquet', 'parquet'), q()), /NaN/)
  })
  it('out of domain with fail', () => bad(computeVector(src('a.parquet', 'parquet'), q({ out_of_domain: 'fail' })), /outside the group_by domains.*column "zone".*value 9/))
  it('more rows than the agreed maximum', () => bad(computeVector(src('a.parquet', 'parquet'), q({ max_rows_per_provider: 2 })), /at most 2/))
  it('bad dataset config', () => {
    expect(() => validateDatasets({ t: { path: 'x', format: 'xlsx' } }, dir)).toThrow(DataError)
    expect(() => validateDatasets({ t: { path: 'x.duckdb', format: 'duckdb' } }, dir)).toThrow(/table/)
  })
})

describe('property: the vector equals an independent computation', () => {
  it('for random data and random queries', async () => {
    const rowArb = fc.record({ zone: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }), fare: fc.option(fc.double({ min: -50, max: 150, noNaN: true }).map((x) => Math.round(x * 1000) / 1000), { nil: null }), cat: fc.constantFrom('a', 'b', "c'd") })
    const aggArb: fc.Arbitrary<Aggregate> = fc.oneof(
      fc.constant({ name: 'n', kind: 'count' } as Aggregate),
      fc.record({ lo: fc.integer({ min: -20, max: 10 }), span: fc.integer({ min: 1, max: 100 }), scale: fc.constantFrom(1, 10, 100, 0.5) })
        .map(({ lo, span, scale }) => ({ name: 's', kind: 'sum', column: 'fare', scale, clip: [lo, lo + span], nulls: 'skip' }) as Aggregate)
    )
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(rowArb, { minLength: 0, maxLength: 40 }), aggArb, fc.integer({ min: 0, max: 3 }), fc.boolean(), async (rs, agg, min, useCat) => {
      const file = join(dir, `prop${run++}.csv`)
      writeFileSync(file, 'zone,fare,cat\n' + rs.map((r) => `${r.zone ?? ''},${r.fare ?? ''},"${r.cat}"`).join('\n') + '\n')
      const group: GroupBy[] = [{ name: 'z', domain: { kind: 'int_range', ref: { column: 'zone' }, min, max: min + 2 } }]
      if (useCat) group.push({ name: 'c', domain: { kind: 'categories', ref: { column: 'cat' }, values: ['a', "c'd"] } })
      const query = q({ group_by: group, aggregates: [agg] })
      const got = await computeVector(src(file, 'csv', { columns: { zone: 'INTEGER', fare: 'DOUBLE', cat: 'VARCHAR' } }), query)
      // independent: plain TypeScript over the same rows
      const want = new BigUint64Array(layoutOf(query).length)
      for (const r of rs) {
        if (r.zone === null || r.zone < min || r.zone > min + 2) continue
        let cell = r.zone - min
        if (useCat) {
          const ci = ['a', "c'd"].indexOf(r.cat)
          if (ci < 0) continue
          cell = cell * 2 + ci
        }
        if (agg.kind === 'count') want[cell] = (want[cell] as bigint) + 1n
        else if (agg.kind === 'sum' && r.fare !== null) want[cell] = BigInt.asUintN(64, (want[cell] as bigint) + fixedPoint(Math.min(agg.clip[1], Math.max(agg.clip[0], r.fare)), agg.scale))
      }
      expect(Array.from(got.vector)).toEqual(Array.from(want))
    }), { numRuns: 25 })
  }, 120_000)

  it('fixed point rounds half away from zero exactly like layout.ts, negative sums as two\'s complement', async () => {
    const fares = [0.125, -0.125, 2.5, -2.5, 0.005, 1.005, -1.005, 2.675]
    const file = join(dir, 'half.csv')
    writeFileSync(file, 'zone,fare\n' + fares.map((f) => `1,${f}`).join('\n') + '\n')
    for (const scale of [1, 100, 1000]) {
      const query = q({ group_by: [], aggregates: [{ name: 's', kind: 'sum', column: 'fare', scale, clip: [-10, 10], nulls: 'fail' }] })
      const { vector } = await computeVector(src(file, 'csv', { columns: { zone: 'INTEGER', fare: 'DOUBLE' } }), query)
      const want = fares.reduce((a, f) => a + fixedPoint(f, scale), 0n)
      expect(BigInt.asIntN(64, vector[0] as bigint)).toBe(want)
    }
  })
})
