// The vector layout every provider must produce bit for bit (protocols/negotiation.md §3.4):
// cells are the cartesian product of the group_by domains in row-major order (first dimension
// slowest); within a cell, one slot per aggregate value in the order of `aggregates` (a mean
// takes two slots: sum, then count). Index = cellIndex * slotsPerCell + slotIndex.
import type { Aggregate, Domain, Query, SlotKind } from './types.ts'

import { noiseTailBound } from '../privacy/intervals.ts'

/** Longest data vector any query may ask for (issue #3: at most 10M cells). */
export const MAX_VECTOR_LENGTH = 10_000_000

export interface SlotSpec {
  aggregate: string
  kind: SlotKind
  /** Fixed-point scale of the slot (1 for counts). */
  scale: number
  /** Whether a value may be negative (decoded as two's complement). */
  signed: boolean
}

export interface Dimension {
  name: string
  size: number
}

export interface Layout {
  dims: Dimension[]
  cells: number
  slots: SlotSpec[]
  /** cells * slots.length: the data part of each provider's vector. */
  length: number
}

export function domainSize(d: Domain): number {
  switch (d.kind) {
    case 'int_range':
      return d.max - d.min + 1
    case 'categories':
      return d.values.length
    case 'bins':
      return d.edges.length - 1
    case 'hour_of_day':
      return 24
    case 'day_of_week':
      return 7
    case 'date':
      return Math.round((Date.parse(d.to + 'T00:00:00Z') - Date.parse(d.from + 'T00:00:00Z')) / 86_400_000) + 1
  }
}

/** Human labels of a domain's cells, in cell order (for reports; not part of any digest). */
export function domainLabels(d: Domain): string[] {
  switch (d.kind) {
    case 'int_range':
      return Array.from({ length: domainSize(d) }, (_, i) => String(d.min + i))
    case 'categories':
      return d.values.map(String)
    case 'bins':
      return d.edges.slice(0, -1).map((lo, i) =>
        d.closed === 'left' ? `[${lo}, ${d.edges[i + 1]})` : `(${lo}, ${d.edges[i + 1]}]`)
    case 'hour_of_day':
      return Array.from({ length: 24 }, (_, i) => String(i).padStart(2, '0'))
    case 'day_of_week':
      return ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
    case 'date': {
      const start = Date.parse(d.from + 'T00:00:00Z')
      return Array.from({ length: domainSize(d) }, (_, i) => new Date(start + i * 86_400_000).toISOString().slice(0, 10))
    }
  }
}

export function slotsOf(a: Aggregate): SlotSpec[] {
  switch (a.kind) {
    case 'count':
      return [{ aggregate: a.name, kind: 'count', scale: 1, signed: false }]
    case 'count_distinct':
      return [{ aggregate: a.name, kind: 'count_distinct', scale: 1, signed: false }]
    case 'sum':
      return [{ aggregate: a.name, kind: 'sum', scale: a.scale, signed: a.clip[0] < 0 }]
    case 'mean':
      return [
        { aggregate: a.name, kind: 'mean_sum', scale: a.scale, signed: a.clip[0] < 0 },
        { aggregate: a.name, kind: 'mean_count', scale: 1, signed: false }
      ]
  }
}

export function layoutOf(q: Pick<Query, 'group_by' | 'aggregates'>): Layout {
  const dims = q.group_by.map((g) => ({ name: g.name, size: domainSize(g.domain) }))
  const cells = dims.reduce((n, d) => n * d.size, 1)
  const slots = q.aggregates.flatMap(slotsOf)
  return { dims, cells, slots, length: cells * slots.length }
}

/** Round half away from zero (protocols/negotiation.md §3.5), as DuckDB's ROUND on DOUBLE. */
export function fixedPoint(value: number, scale: number): bigint {
  const x = value * scale
  return BigInt(Math.sign(x) * Math.round(Math.abs(x)))
}

export interface SlotBound {
  min: bigint
  max: bigint
}

/**
 * Inclusive bounds of one slot's value in the *total* over `providers` providers, given the
 * agreed max_rows_per_provider and clip: the plausibility check of masked-sum.md check 6.
 */
export function slotBounds(q: Query, providers: number): SlotBound[] {
  const rows = BigInt(q.max_rows_per_provider) * BigInt(providers)
  const out: SlotBound[] = []
  for (const a of q.aggregates) {
    if (a.kind === 'count' || a.kind === 'count_distinct') out.push({ min: 0n, max: rows })
    else {
      const lo = fixedPoint(a.clip[0], a.scale)
      const hi = fixedPoint(a.clip[1], a.scale)
      out.push({ min: rows * (lo < 0n ? lo : 0n), max: rows * (hi > 0n ? hi : 0n) })
      if (a.kind === 'mean') out.push({ min: 0n, max: rows })
    }
  }
  return out
}

/**
 * slotBounds of the total, widened by the noise's tail bound when the query is noisy (privacy.md §7): an honest
 * noisy total may leave the exact range. For the buyer's plausibility flags; a provider's clamp uses slotBounds.
 */
export function totalBounds(q: Query, providers: number): SlotBound[] {
  const out = slotBounds(q, providers)
  if (!q.privacy) return out
  const cells = layoutOf(q).cells
  const sigmas = q.privacy.noise.sigmas
  return out.map((b, i) => {
    const tail = BigInt(noiseTailBound(sigmas[i] ?? 1, providers, cells))
    return { min: b.min - tail, max: b.max + tail }
  })
}
