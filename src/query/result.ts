// Turning the agreed total vector back into the buyer's table (pure). Counts stay integers;
// sums are divided by their fixed-point scale; a mean is sum / count (null where count is 0).
import { domainLabels, layoutOf } from './layout.ts'
import type { Query } from './types.ts'

export interface ResultCell {
  /** One label per group_by dimension, in query order. */
  key: string[]
  /** One value per aggregate name. */
  values: Record<string, number | null>
  /**
   * Aggregates of this cell whose total lies outside the bounds the agreement allows (check 6b,
   * masked-sum.md §8): some provider's input was implausible. Absent when all are plausible.
   */
  implausible?: string[]
}

export interface ResultTable {
  dims: string[]
  aggregates: string[]
  cells: ResultCell[]
}

function num(v: bigint): number {
  // exact up to 2^53; the plausibility bound keeps honest totals far below 2^63
  return Number(v)
}

export function decodeResult(q: Query, values: readonly bigint[]): ResultTable {
  const layout = layoutOf(q)
  if (values.length !== layout.length) {
    throw new RangeError(`expected ${layout.length} values for this query, got ${values.length}`)
  }
  const labels = q.group_by.map((g) => domainLabels(g.domain))
  const per = layout.slots.length
  // Z_2^64 → integers: two's complement only where a slot may be negative (masked-sum.md §4)
  const signed = layout.slots.map((sl) => sl.signed)
  values = values.map((v, i) => (signed[i % per] ? BigInt.asIntN(64, v) : v))
  const cells: ResultCell[] = []
  const idx = new Array<number>(labels.length).fill(0)
  for (let c = 0; c < layout.cells; c++) {
    const out: Record<string, number | null> = {}
    let s = 0
    for (const a of q.aggregates) {
      const v = values[c * per + s] as bigint
      if (a.kind === 'count' || a.kind === 'count_distinct') {
        out[a.name] = num(v)
        s += 1
      } else if (a.kind === 'sum') {
        out[a.name] = num(v) / a.scale
        s += 1
      } else {
        const n = values[c * per + s + 1] as bigint
        out[a.name] = n === 0n ? null : num(v) / a.scale / num(n)
        s += 2
      }
    }
    cells.push({ key: idx.map((i, d) => labels[d]?.[i] ?? ''), values: out })
    // row-major increment: last dimension fastest
    for (let d = idx.length - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1
      if ((idx[d] as number) < (labels[d]?.length ?? 0)) break
      idx[d] = 0
    }
  }
  return { dims: q.group_by.map((g) => g.name), aggregates: q.aggregates.map((a) => a.name), cells }
}

/**
 * Mark check 6b's findings on the table: `indices` are positions in the total vector; each names a
 * cell (index ÷ slots per cell) and the aggregate its slot belongs to.
 */
export function flagImplausible(q: Query, t: ResultTable, indices: readonly number[]): ResultTable {
  const slots = layoutOf(q).slots
  for (const i of indices) {
    const cell = t.cells[Math.floor(i / slots.length)]
    const agg = slots[i % slots.length]?.aggregate
    if (!cell || !agg) continue
    if (!(cell.implausible ??= []).includes(agg)) cell.implausible.push(agg)
  }
  return t
}

function csvField(v: string | number | null): string {
  if (v == null) return ''
  const s = String(v)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** CSV; a last column `implausible` (aggregate names, `;`-separated) appears only when check 6b flagged a cell. */
export function resultToCsv(t: ResultTable): string {
  const flags = t.cells.some((c) => c.implausible?.length)
  const lines = [[...t.dims, ...t.aggregates, ...(flags ? ['implausible'] : [])].map(csvField).join(',')]
  for (const c of t.cells) {
    lines.push([...c.key, ...t.aggregates.map((a) => c.values[a] ?? null), ...(flags ? [(c.implausible ?? []).join(';')] : [])].map(csvField).join(','))
  }
  return lines.join('\n') + '\n'
}

/** The `n` cells with the largest value of the first aggregate (for summaries and the UI). */
/** The n cells with the largest first aggregate, each with every aggregate's value by name. */
export function topCells(t: ResultTable, n = 5): Array<{ label: string; value: number; values: Record<string, number | null> }> {
  const a = t.aggregates[0]
  if (!a) return []
  return t.cells
    .map((c) => ({ label: c.key.join(' × ') || '(total)', value: c.values[a] ?? 0, values: c.values }))
    .sort((x, y) => y.value - x.value)
    .slice(0, n)
}
