// Contribution bounding per privacy unit (protocols/privacy.md §3): the reference selection that the data layer's
// SQL must reproduce bit for bit, so that every data source keeps the same rows. Pure; node:crypto hashing only.
//
// For a unit u: rank its cells c by SHA-256("mpc-agent/privacy/bound/v1" ‖ 0x00 ‖ u ‖ 0x00 ‖ c) (hex, ascending)
// and keep the first max_cells; within a kept cell, rank its rows by SHA-256(… ‖ u ‖ 0x00 ‖ c ‖ 0x00 ‖ rowKey) and
// keep the first max_rows_per_cell. u is the unit column's canonical text, c the cell index in decimal, rowKey a
// canonical encoding of the row's agreed columns (ties between identical rows are interchangeable: same values).
// After this, one unit touches ≤ max_cells cells with ≤ max_rows_per_cell rows each, which is what
// slotSensitivities() assumes.
import { createHash } from 'node:crypto'

const LABEL = 'mpc-agent/privacy/bound/v1'

export interface UnitRow {
  /** the privacy unit's value, canonical text */
  readonly unit: string
  /** the cell index the row falls in (negotiation.md §3.4) */
  readonly cell: number
  /** canonical encoding of the row's agreed columns */
  readonly key: string
}

export interface UnitBounds {
  readonly maxCells: number
  readonly maxRowsPerCell: number
}

const h = (...parts: string[]): string => createHash('sha256').update(parts.join('\u0000')).digest('hex')
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** indices of the rows kept, ascending */
export function boundContributions(rows: readonly UnitRow[], bounds: UnitBounds): number[] {
  if (!Number.isSafeInteger(bounds.maxCells) || bounds.maxCells < 1) throw new RangeError(`expected max_cells ≥ 1, got ${bounds.maxCells}`)
  if (!Number.isSafeInteger(bounds.maxRowsPerCell) || bounds.maxRowsPerCell < 1) throw new RangeError(`expected max_rows_per_cell ≥ 1, got ${bounds.maxRowsPerCell}`)
  const byUnit = new Map<string, Map<number, number[]>>()
  rows.forEach((r, i) => {
    const cells = byUnit.get(r.unit) ?? new Map<number, number[]>()
    const list = cells.get(r.cell) ?? []
    list.push(i)
    cells.set(r.cell, list)
    byUnit.set(r.unit, cells)
  })
  const kept: number[] = []
  for (const [unit, cells] of byUnit) {
    const rankedCells = [...cells.keys()].map((c) => ({ c, k: h(LABEL, unit, String(c)) })).sort((a, b) => cmp(a.k, b.k)).slice(0, bounds.maxCells)
    for (const { c } of rankedCells) {
      const idx = cells.get(c) ?? []
      const ranked = idx.map((i) => ({ i, k: h(LABEL, unit, String(c), (rows[i] as UnitRow).key) })).sort((a, b) => cmp(a.k, b.k))
      for (const { i } of ranked.slice(0, bounds.maxRowsPerCell)) kept.push(i)
    }
  }
  return kept.sort((a, b) => a - b)
}
