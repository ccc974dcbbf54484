// Contribution bounding (protocols/privacy.md §3): a unit with many rows moves the aggregated vector by at most the
// L1 / L2 bound slotSensitivities() charges for; the selection does not depend on row order.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { slotSensitivities } from '../../src/privacy/accounting.ts'
import { boundContributions, type UnitRow } from '../../src/privacy/bounding.ts'

type Row = UnitRow & { value: number }

/** count and clipped-scaled sum per cell, the two slot kinds */
function aggregate(rows: readonly Row[], keep: number[], cells: number, maxAbs: number): { count: number[]; sum: number[] } {
  const count = new Array<number>(cells).fill(0)
  const sum = new Array<number>(cells).fill(0)
  for (const i of keep) {
    const r = rows[i] as Row
    count[r.cell] = (count[r.cell] as number) + 1
    sum[r.cell] = (sum[r.cell] as number) + Math.max(-maxAbs, Math.min(maxAbs, r.value))
  }
  return { count, sum }
}

const norms = (a: number[], b: number[]): { l1: number; l2: number } => {
  let l1 = 0
  let l2 = 0
  a.forEach((x, i) => {
    const d = Math.abs(x - (b[i] as number))
    l1 += d
    l2 += d * d
  })
  return { l1, l2: Math.sqrt(l2) }
}

describe('contribution bounding', () => {
  it('removing one unit (with arbitrarily many rows) moves each slot by at most its charged L1 and L2', () => {
    const cells = 30
    const maxAbs = 100
    const row = fc.record({ unit: fc.constantFrom('a', 'b', 'c', 'victim'), cell: fc.integer({ min: 0, max: cells - 1 }), key: fc.string({ maxLength: 6 }), value: fc.integer({ min: -1000, max: 1000 }) })
    fc.assert(
      fc.property(fc.array(row, { maxLength: 300 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), (rows, maxCells, maxRowsPerCell) => {
        const bounds = { maxCells, maxRowsPerCell }
        const without = rows.filter((r) => r.unit !== 'victim')
        const a = aggregate(rows, boundContributions(rows, bounds), cells, maxAbs)
        const b = aggregate(without, boundContributions(without, bounds), cells, maxAbs)
        const [countS, sumS] = slotSensitivities([{ kind: 'count' }, { kind: 'sum', maxAbs }], { kind: 'column', column: 'u', maxCells, maxRowsPerCell })
        const dc = norms(a.count, b.count)
        const ds = norms(a.sum, b.sum)
        return dc.l1 <= (countS?.l1 as number) && dc.l2 <= (countS?.l2 as number) + 1e-9 && ds.l1 <= (sumS?.l1 as number) && ds.l2 <= (sumS?.l2 as number) + 1e-9
      }),
      { numRuns: 300 }
    )
  })

  it('an unbounded unit would exceed the bound (the check above can fail)', () => {
    const rows: Row[] = Array.from({ length: 50 }, (_, i) => ({ unit: 'victim', cell: i % 10, key: String(i), value: 100 }))
    const all = rows.map((_, i) => i)
    const moved = aggregate(rows, all, 10, 100).count.reduce((x, y) => x + y, 0)
    const [countS] = slotSensitivities([{ kind: 'count' }], { kind: 'column', column: 'u', maxCells: 3, maxRowsPerCell: 2 })
    expect(moved).toBeGreaterThan(countS?.l1 as number)
    expect(boundContributions(rows, { maxCells: 3, maxRowsPerCell: 2 })).toHaveLength(6)
  })

  it('selects the same rows whatever their order (every data source keeps the same rows)', () => {
    const rows: UnitRow[] = Array.from({ length: 200 }, (_, i) => ({ unit: `u${i % 7}`, cell: (i * 13) % 24, key: `row-${i}` }))
    const kept = new Set(boundContributions(rows, { maxCells: 4, maxRowsPerCell: 2 }).map((i) => (rows[i] as UnitRow).key))
    const shuffled = [...rows].reverse()
    const kept2 = new Set(boundContributions(shuffled, { maxCells: 4, maxRowsPerCell: 2 }).map((i) => (shuffled[i] as UnitRow).key))
    expect(kept2).toEqual(kept)
  })
})
