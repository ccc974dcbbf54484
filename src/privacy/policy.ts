// A provider's privacy policy checks on a query's `privacy` section (protocols/privacy.md §9), pure. The query and
// policy parsers (src/query, src/policy) map their validated YAML onto these types; reasons use the codes of §9.
import type { DpUnit } from './accounting.ts'

/** the query's signed `privacy` section */
export interface QueryPrivacy {
  readonly epsilon: number
  readonly delta: number
  readonly unit: DpUnit
  readonly suppressBelow?: number
}

/** the provider's `privacy` policy */
export interface PolicyPrivacy {
  readonly required: boolean
  readonly maxEpsilonPerQuery: number
  /** the budget's δ: a query may not ask for a larger δ (a larger δ buys more ε at the same ρ); undefined = no cap */
  readonly maxDeltaPerQuery?: number
  /** the privacy unit per dataset name */
  readonly units: Readonly<Record<string, DpUnit>>
  /** t; undefined = N − 2 */
  readonly assumeDishonestProviders?: number
}

export interface PrivacyReason {
  readonly code: 'privacy_required' | 'privacy_unit' | 'privacy_epsilon'
  readonly message: string
}

export function sameUnit(a: DpUnit, b: DpUnit): boolean {
  if (a.kind === 'row' || b.kind === 'row') return a.kind === b.kind
  return a.column === b.column && a.maxCells === b.maxCells && a.maxRowsPerCell === b.maxRowsPerCell
}

const show = (u: DpUnit): string => (u.kind === 'row' ? 'row' : `{column: ${u.column}, max_cells: ${u.maxCells}, max_rows_per_cell: ${u.maxRowsPerCell}}`)

/** every privacy reason to refuse the query on `dataset` (empty: acceptable as far as privacy goes, before the ledger) */
export function evaluatePrivacy(query: QueryPrivacy | undefined, policy: PolicyPrivacy | undefined, dataset: string): PrivacyReason[] {
  if (policy === undefined) return []
  if (query === undefined) {
    return policy.required ? [{ code: 'privacy_required', message: `dataset ${dataset} is only served with a privacy section (epsilon, delta, unit)` }] : []
  }
  const out: PrivacyReason[] = []
  const unit = Object.hasOwn(policy.units, dataset) ? policy.units[dataset] : undefined
  if (unit === undefined) out.push({ code: 'privacy_unit', message: `no privacy unit is configured for dataset ${dataset}` })
  else if (!sameUnit(unit, query.unit)) out.push({ code: 'privacy_unit', message: `the query's privacy unit ${show(query.unit)} differs from this dataset's ${show(unit)}` })
  if (!(query.epsilon <= policy.maxEpsilonPerQuery)) out.push({ code: 'privacy_epsilon', message: `epsilon ${query.epsilon} exceeds this provider's max_epsilon_per_query ${policy.maxEpsilonPerQuery}` })
  // max_epsilon_per_query bounds a query's cost only together with its δ: ε = 1 at δ = 10⁻³ costs more ρ than at 10⁻⁹
  if (policy.maxDeltaPerQuery !== undefined && !(query.delta <= policy.maxDeltaPerQuery)) {
    out.push({ code: 'privacy_epsilon', message: `delta ${query.delta} exceeds this provider's budget delta ${policy.maxDeltaPerQuery} (a larger delta would buy more privacy loss per query)` })
  }
  return out
}

/** t for a query with N providers: the policy's value, or N − 2 (the buyer with up to N − 2 providers), at least 0 */
export function assumedDishonest(policy: PolicyPrivacy, providers: number): number {
  const t = policy.assumeDishonestProviders ?? providers - 2
  return Math.max(0, Math.min(t, providers - 1))
}
