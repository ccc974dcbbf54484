// Turning the agreed total vector back into the buyer's table (pure). Counts stay integers;
// sums are divided by their fixed-point scale; a mean is sum / count (null where count is 0).
import { domainLabels, layoutOf } from './layout.ts'
import type { PrivacyUnit, Query } from './types.ts'
import { meanEstimate, MEAN_NULL_K, noiseInterval } from '../privacy/intervals.ts'
import { zcdpEpsilon } from '../privacy/accounting.ts'
import { planQuery } from './privacy.ts'

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
  /** Noisy queries: the 95% interval [low, high] per aggregate (null for a mean reported as null). */
  interval?: Record<string, [number | null, number | null]>
  /** Noisy queries: the cell's noisy count is below `suppress_below` (post-processing; costs no budget). */
  suppressed?: boolean
}

/** What the buyer is told about the noise of a privacy query (protocols/privacy.md §7). */
export interface NoiseSummary {
  mechanism: 'discrete_gaussian'
  epsilon: number
  delta: number
  unit: PrivacyUnit
  providers: number
  /** t: providers assumed to collude with the buyer; the guarantee rests on the other N − t's noise */
  assumed_dishonest: number
  /** ε the noise of the N − t honest providers actually guarantees at δ (≤ epsilon) */
  achieved_epsilon: number
  suppress_below: number | null
  /** per aggregate, in value units: the total noise's standard deviation and the 95% interval's half-width (a
   * mean: its sum's and count's, the interval propagated per cell; null where the noisy count < k·σ_count) */
  aggregates: Record<string, { std: number; half_width_95: number; coverage: number; count_std?: number; mean_null_below_k?: number }>
}

export interface ResultTable {
  dims: string[]
  aggregates: string[]
  cells: ResultCell[]
  /** present for a privacy query: the result is noisy */
  noise?: NoiseSummary
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
  const signed = layout.slots.map((sl) => sl.signed || q.privacy !== undefined) // noisy slots are signed (privacy.md §7)
  values = values.map((v, i) => (signed[i % per] ? BigInt.asIntN(64, v) : v))
  const cells: ResultCell[] = []
  const idx = new Array<number>(labels.length).fill(0)
  const noise = q.privacy ? noiseOf(q) : null
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
    const cell: ResultCell = { key: idx.map((i, d) => labels[d]?.[i] ?? ''), values: out }
    if (noise) {
      const iv: Record<string, [number | null, number | null]> = {}
      let s2 = 0
      let countForSuppress: number | null = null
      for (const a of q.aggregates) {
        const ns = noise.slots[s2] as { std: number; halfWidth: number }
        if (a.kind === 'mean') {
          const nc = noise.slots[s2 + 1] as { std: number; halfWidth: number }
          const m = meanEstimate(num(values[c * per + s2] as bigint), num(values[c * per + s2 + 1] as bigint), ns.std, nc.std, a.scale)
          out[a.name] = m.mean
          iv[a.name] = [m.low, m.high]
          countForSuppress ??= num(values[c * per + s2 + 1] as bigint)
          s2 += 2
          continue
        }
        const v = out[a.name] as number
        const w = a.kind === 'sum' ? ns.halfWidth / a.scale : ns.halfWidth
        iv[a.name] = [v - w, v + w]
        if (a.kind === 'count') countForSuppress ??= v
        s2 += 1
      }
      cell.interval = iv
      const below = q.privacy?.suppress_below
      if (below !== null && below !== undefined && countForSuppress !== null && countForSuppress < below) cell.suppressed = true
    }
    cells.push(cell)
    // row-major increment: last dimension fastest
    for (let d = idx.length - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1
      if ((idx[d] as number) < (labels[d]?.length ?? 0)) break
      idx[d] = 0
    }
  }
  return { dims: q.group_by.map((g) => g.name), aggregates: q.aggregates.map((a) => a.name), cells, ...(noise ? { noise: noise.summary } : {}) }
}

function noiseOf(q: Query): { slots: Array<{ std: number; halfWidth: number }>; summary: NoiseSummary } {
  const p = q.privacy as NonNullable<Query['privacy']>
  const n = q.participants.providers.length
  const slots = p.noise.sigmas.map((sg) => noiseInterval(sg, n))
  const aggs: NoiseSummary['aggregates'] = {}
  let s = 0
  for (const a of q.aggregates) {
    const x = slots[s] as { std: number; halfWidth: number; coverage: number }
    const unit = a.kind === 'sum' || a.kind === 'mean' ? a.scale : 1
    aggs[a.name] = { std: x.std / unit, half_width_95: x.halfWidth / unit, coverage: x.coverage }
    if (a.kind === 'mean') {
      const c = slots[s + 1] as { std: number }
      aggs[a.name] = { ...(aggs[a.name] as NoiseSummary['aggregates'][string]), count_std: c.std, mean_null_below_k: MEAN_NULL_K }
    }
    s += a.kind === 'mean' ? 2 : 1
  }
  let achieved = p.epsilon
  try {
    achieved = zcdpEpsilon(achievedRho(q), p.delta)
  } catch {
    // keep the stated epsilon
  }
  return {
    slots,
    summary: { mechanism: p.noise.mechanism, epsilon: p.epsilon, delta: p.delta, unit: p.unit, providers: n, assumed_dishonest: p.noise.dishonest, achieved_epsilon: achieved, suppress_below: p.suppress_below, aggregates: aggs }
  }
}

function achievedRho(q: Query): number {
  const p = q.privacy as NonNullable<Query['privacy']>
  const n = q.participants.providers.length
  return planQuery(q, layoutOf(q).cells, p, n, p.noise.dishonest).achievedRho
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
  const noisy = t.noise !== undefined
  const ivCols = noisy ? t.aggregates.flatMap((a) => [`${a}_low95`, `${a}_high95`]) : []
  const lines = [[...t.dims, ...t.aggregates, ...ivCols, ...(noisy ? ['suppressed'] : []), ...(flags ? ['implausible'] : [])].map(csvField).join(',')]
  for (const c of t.cells) {
    const iv = noisy ? t.aggregates.flatMap((a) => c.interval?.[a] ?? [null, null]) : []
    lines.push([...c.key, ...t.aggregates.map((a) => c.values[a] ?? null), ...iv, ...(noisy ? [c.suppressed ? 'yes' : ''] : []), ...(flags ? [(c.implausible ?? []).join(';')] : [])].map(csvField).join(','))
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
