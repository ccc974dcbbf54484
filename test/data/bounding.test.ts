// Contribution bounding per privacy unit in the provider's SQL (negotiation.md §3.7 step 2, privacy.md §3): an
// entity with many rows moves the vector by at most the bound the accountant charges, the SQL keeps the same
// rows as the reference selection (src/privacy/bounding.ts), and the noise stage touches every data slot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { addQueryNoise, computeVector, closeEngine } from '../../src/data/compute.ts'
import { boundContributions } from '../../src/privacy/bounding.ts'
import { slotSensitivities } from '../../src/privacy/accounting.ts'
import { dpAggregates, dpUnit } from '../../src/query/privacy.ts'
import type { Query } from '../../src/query/types.ts'
import { query as q, signed, source, tmp } from './fixtures.ts'

const dir = tmp()
const COLUMNS = { zone: 'INTEGER', fare: 'DOUBLE', vehicle: 'VARCHAR' }
interface Row { zone: number; fare: number; vehicle: string }
const base: Row[] = []
for (let i = 0; i < 60; i++) base.push({ zone: 1 + (i % 10), fare: (i * 7) % 90, vehicle: `v${i % 20}` })
const heavy: Row[] = []
for (let i = 0; i < 300; i++) heavy.push({ zone: 1 + (i % 10), fare: 95, vehicle: 'HEAVY' })
const write = (file: string, rows: Row[]): void => writeFileSync(join(dir, file), 'zone,fare,vehicle\n' + rows.map((r) => `${r.zone},${r.fare},${r.vehicle}`).join('\n') + '\n')
const unit = { column: 'vehicle', max_cells: 3, max_rows_per_cell: 2 }

async function dpQuery(aggs: Query['aggregates']): Promise<Query> {
  const slots = aggs.flatMap((a) => (a.kind === 'mean' ? [1, 1] : [1]))
  return q({
    group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 10 } }],
    aggregates: aggs,
    privacy: { epsilon: 1, delta: 1e-9, unit, suppress_below: null, noise: { mechanism: 'discrete_gaussian', dishonest: 1, sigmas: slots.map(() => 3) } }
  })
}

beforeAll(() => {
  write('without.csv', base)
  write('with.csv', [...base.slice(0, 30), ...heavy, ...base.slice(30)])
})
afterAll(async () => {
  await closeEngine()
  rmSync(dir, { recursive: true, force: true })
})

describe('bounding per unit', () => {
  it('an entity with 300 rows moves each slot by at most the charged L1 bound', async () => {
    const query = await dpQuery([{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 1, clip: [0, 100] }])
    const without = signed((await computeVector(source(dir, 'without.csv', 'csv', { columns: COLUMNS }), query)).vector)
    const withH = signed((await computeVector(source(dir, 'with.csv', 'csv', { columns: COLUMNS }), query)).vector)
    const sens = slotSensitivities(dpAggregates(query.aggregates), dpUnit(unit))
    const per = sens.length
    for (let s = 0; s < per; s++) {
      let l1 = 0
      let l2 = 0
      for (let i = s; i < without.length; i += per) {
        const d = Math.abs((withH[i] as number) - (without[i] as number))
        l1 += d
        l2 += d * d
      }
      expect(l1).toBeGreaterThan(0) // the entity does count, bounded
      expect(l1).toBeLessThanOrEqual(sens[s]?.l1 as number)
      expect(Math.sqrt(l2)).toBeLessThanOrEqual((sens[s]?.l2 as number) + 1e-9)
    }
    // the heavy entity adds exactly max_cells × max_rows_per_cell rows
    const counts = (v: number[]): number => v.filter((_, i) => i % per === 0).reduce((a, b) => a + b, 0)
    expect(counts(withH) - counts(without)).toBe(unit.max_cells * unit.max_rows_per_cell)
    // without bounding (unit: row) the same entity moves the counts by all its 300 rows: the test can fail
    const rowQuery = await q({ ...query, privacy: { ...(query.privacy as NonNullable<Query['privacy']>), unit: 'row' } })
    const rowWith = signed((await computeVector(source(dir, 'with.csv', 'csv', { columns: COLUMNS }), rowQuery)).vector)
    const rowWithout = signed((await computeVector(source(dir, 'without.csv', 'csv', { columns: COLUMNS }), rowQuery)).vector)
    expect(counts(rowWith) - counts(rowWithout)).toBe(300)
  })

  it('keeps the same rows as the reference selection (count: rows in a cell are interchangeable)', async () => {
    const query = await dpQuery([{ name: 'n', kind: 'count' }])
    const rows = [...base.slice(0, 30), ...heavy, ...base.slice(30)]
    const kept = boundContributions(rows.map((r) => ({ unit: r.vehicle, cell: r.zone - 1, key: '' })), { maxCells: unit.max_cells, maxRowsPerCell: unit.max_rows_per_cell })
    const ref = new Array<number>(10).fill(0)
    for (const i of kept) ref[(rows[i] as Row).zone - 1]! += 1
    const got = signed((await computeVector(source(dir, 'with.csv', 'csv', { columns: COLUMNS }), query)).vector)
    expect(got).toEqual(ref)
  })

  it('with a filter: only the rows the filter keeps are ranked, and a run\'s statement gives the preview\'s vector', async () => {
    const query = { ...(await dpQuery([{ name: 'n', kind: 'count' }])), filter: { op: 'cmp', cmp: '<', ref: { column: 'fare' }, value: 50 } } as Query
    const rows = [...base.slice(0, 30), ...heavy, ...base.slice(30)].filter((r) => r.fare < 50)
    const kept = boundContributions(rows.map((r) => ({ unit: r.vehicle, cell: r.zone - 1, key: '' })), { maxCells: unit.max_cells, maxRowsPerCell: unit.max_rows_per_cell })
    const ref = new Array<number>(10).fill(0)
    for (const i of kept) ref[(rows[i] as Row).zone - 1]! += 1
    const src = source(dir, 'with.csv', 'csv', { columns: COLUMNS })
    const run = await computeVector(src, query)
    const preview = await computeVector(src, query, { countFiltered: true })
    expect(signed(run.vector)).toEqual(ref)
    expect(signed(preview.vector)).toEqual(ref)
    expect(preview.stats.filtered).toBe(360 - rows.length)
  })

  it('the noise stage adds noise to every data slot, empty cells included, and decodes as signed', async () => {
    const query = await dpQuery([{ name: 'n', kind: 'count' }])
    const v = new BigUint64Array(10)
    const before = Array.from(v)
    addQueryNoise(query, v)
    const after = signed(v)
    expect(after.some((x, i) => x !== Number(before[i]))).toBe(true)
    expect(after.some((x) => x < 0)).toBe(true)
    expect(Math.max(...after.map(Math.abs))).toBeLessThan(3 * 12) // σ = 3: far inside 12σ
  })
})
