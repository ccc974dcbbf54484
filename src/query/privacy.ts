// The query's `privacy` section (negotiation.md §3.8, protocols/privacy.md): mapping onto the accountant's types,
// the buyer's noise plan, and strict validation of the signed section. Pure.
import type { Aggregate, PrivacyUnit, Query, QueryPrivacy } from './types.ts'
import { fixedPoint } from './layout.ts'
import type { DpAggregate, DpUnit, NoisePlan } from '../privacy/accounting.ts'
import { planNoise, slotSensitivities } from '../privacy/accounting.ts'
import { MAX_SIGMA } from '../privacy/sampler.ts'
import { noiseTailBound } from '../privacy/intervals.ts'

export const MECHANISM = 'discrete_gaussian' as const
export const MAX_PRIVACY_CELLS = 1_000_000

export function dpUnit(u: PrivacyUnit): DpUnit {
  return u === 'row' ? { kind: 'row' } : { kind: 'column', column: u.column, maxCells: u.max_cells, maxRowsPerCell: u.max_rows_per_cell }
}

export function privacyUnitOf(u: DpUnit): PrivacyUnit {
  return u.kind === 'row' ? 'row' : { column: u.column, max_cells: u.maxCells, max_rows_per_cell: u.maxRowsPerCell }
}

function maxAbs(a: { scale: number; clip: [number, number] }): number {
  const m = [fixedPoint(a.clip[0], a.scale), fixedPoint(a.clip[1], a.scale)].map((x) => (x < 0n ? -x : x)).reduce((x, y) => (x > y ? x : y))
  return Number(m)
}

/** |round(clip_max·scale) − round(clip_min·scale)|: how far a mean's rescaled sum can move per row (accounting.ts). */
function span(a: { scale: number; clip: [number, number] }): number {
  const d = fixedPoint(a.clip[1], a.scale) - fixedPoint(a.clip[0], a.scale)
  return Number(d < 0n ? -d : d)
}

export function dpAggregates(aggs: readonly Aggregate[]): DpAggregate[] {
  return aggs.map((a): DpAggregate => (a.kind === 'count' || a.kind === 'count_distinct' ? { kind: a.kind }
    : a.kind === 'mean' ? { kind: 'mean', maxAbs: maxAbs(a), span: span(a) } : { kind: 'sum', maxAbs: maxAbs(a) }))
}

/** The plan for a query body with `providers` providers, of which `dishonest` may collude with the buyer. */
export function planQuery(q: Pick<Query, 'aggregates'>, cells: number, p: { epsilon: number; delta: number; unit: PrivacyUnit }, providers: number, dishonest: number): NoisePlan {
  return planNoise({ epsilon: p.epsilon, delta: p.delta, slots: slotSensitivities(dpAggregates(q.aggregates), dpUnit(p.unit)), cells, providers, dishonest })
}

/** Per-slot bound on the total noise of N providers over all cells (overflow and plausibility, negotiation.md §3.5). */
export function noiseBounds(priv: QueryPrivacy | undefined, providers: number, cells: number): bigint[] | null {
  if (!priv) return null
  return priv.noise.sigmas.map((s) => BigInt(noiseTailBound(s, providers, cells)))
}

export { MAX_SIGMA }
