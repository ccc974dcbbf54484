// Evaluating a proposal against this provider's policy (negotiation.md §6). Pure: the audit log
// is passed in as history. Every rule that fails is reported with its own code, not just the first.
import type { Query } from '../query/types.ts'
import { columnsOf } from '../query/columns.ts'
import { layoutOf, domainSize } from '../query/layout.ts'
import { formatFilter } from '../query/filter.ts'
import type { Policy } from './policy.ts'
import { evaluatePrivacy } from '../privacy/policy.ts'
import { checkNoiseShares, slotSensitivities } from '../privacy/accounting.ts'
import { dpAggregates, dpUnit } from '../query/privacy.ts'
import { differencingConflict, differencingMessage, pinGroups, type Pin } from './differencing.ts'

export interface PolicyHistory {
  certifiedRunsByBuyerSince(buyer: string, sinceMs: number): number
}

export interface PolicyContext {
  query: Query
  /** The authenticated proposer. */
  buyer: string
  self: string
  configuredPeers: ReadonlyMap<string, 'provider' | 'buyer'>
  history: PolicyHistory
  now: number
  /** Live differencing pins (src/agent/admission.ts); the agent re-checks them atomically before ACCEPT. */
  pins?: readonly Pin[]
  /** The resolved files or table of the query's dataset, when configured (differencing pins). */
  source?: string
  /** Optional: configured names for peer IDs in reason messages (additive to the brief's context). */
  nameOf?: (peerId: string) => string
}

export interface PolicyDecision {
  accept: boolean
  reasons: Array<{ code: string; message: string }>
}

export function evaluatePolicy(policy: Policy, ctx: PolicyContext): PolicyDecision {
  const { query: q } = ctx
  const who = (id: string): string => {
    const n = ctx.nameOf?.(id)
    return n && n !== id ? `${n} (${id.slice(0, 12)}…)` : id
  }
  const reasons: PolicyDecision['reasons'] = []
  const no = (code: string, message: string): void => {
    reasons.push({ code, message })
  }
  if (!policy.buyers.includes(ctx.buyer)) no('buyer_not_allowed', `buyer ${who(ctx.buyer)} is not in this provider's buyers list (policy.yaml buyers)`)
  if (q.participants.buyer !== ctx.buyer) no('buyer_mismatch', `the query names ${who(q.participants.buyer)} as buyer but ${who(ctx.buyer)} proposed it`)
  if (!q.participants.providers.includes(ctx.self)) no('not_a_participant', 'this provider is not among the query\'s providers')
  const rules = Object.hasOwn(policy.datasets, q.dataset) ? policy.datasets[q.dataset] : undefined // never an inherited name ("constructor")
  if (!rules) no('dataset_not_exposed', `dataset "${q.dataset}" is not exposed by this provider's policy`)
  else {
    const cols = columnsOf(q)
    for (const c of cols.filter) if (!rules.filter_columns.includes(c)) no('column_not_allowed_filter', `column "${c}" may not be used in a filter (not in datasets.${q.dataset}.filter_columns)`)
    for (const c of cols.group_by) if (!rules.group_by_columns.includes(c)) no('column_not_allowed_group_by', `column "${c}" may not be grouped by (not in datasets.${q.dataset}.group_by_columns)`)
    for (const c of cols.aggregates) if (!rules.aggregate_columns.includes(c)) no('column_not_allowed_aggregate', `column "${c}" may not be aggregated (not in datasets.${q.dataset}.aggregate_columns)`)
    for (const c of new Set([...cols.filter, ...cols.group_by])) {
      if (rules.deny_columns.includes(c)) no('column_denied', `column "${c}" is denied for filter and group_by (it would single out one firm's data)`)
    }
    // negotiation.md §6: a buyer must not tune the clamp bound into a probe of one provider's counts
    if (q.max_rows_per_provider < rules.max_rows_floor) {
      no('row_bound', `max_rows_per_provider ${q.max_rows_per_provider} is below this provider's floor of ${rules.max_rows_floor} for dataset "${q.dataset}" (policy datasets.${q.dataset}.max_rows_floor)`)
    }
    for (const a of q.aggregates) {
      if (a.kind !== 'sum' && a.kind !== 'mean') continue
      const req = rules.required_clip[a.column]
      if (req && (a.clip[0] < req[0] || a.clip[1] > req[1])) no('clip_required', `aggregate "${a.name}" must clip ${a.column} within [${req[0]}, ${req[1]}], it clips to [${a.clip[0]}, ${a.clip[1]}]`)
    }
  }
  const n = q.participants.providers.length
  if (n < policy.min_providers) no('too_few_providers', `${n} providers take part; this provider requires at least ${policy.min_providers}`)
  const others = q.participants.providers.filter((p) => p !== ctx.self)
  for (const p of others) {
    if (ctx.configuredPeers.get(p) !== 'provider') no('unknown_co_provider', `co-provider ${who(p)} is not a configured provider peer of this agent; providers connect directly, so add it with \`mpc-agent peers add\` if you trust it`)
  }
  const trusted = others.filter((p) => policy.trusted_co_providers.peers.includes(p)).length
  if (trusted < policy.trusted_co_providers.min) no('untrusted_co_providers', `only ${trusted} of the other providers are in trusted_co_providers; at least ${policy.trusted_co_providers.min} required`)
  const cells = layoutOf(q).cells
  if (cells > policy.max_cells) no('too_many_cells', `${cells} cells exceed this provider's limit of ${policy.max_cells}`)
  const day = ctx.now - 86_400_000
  const runs = ctx.history.certifiedRunsByBuyerSince(ctx.buyer, day)
  if (runs >= policy.max_runs_per_buyer_per_day) no('rate_limited', `this buyer already had ${runs} certified runs in the last 24 h (limit ${policy.max_runs_per_buyer_per_day})`)
  if (policy.differencing_window_s > 0) {
    // whatever the query says: only the data source and the provider set count (negotiation.md §6.2)
    const pin = differencingConflict(ctx.pins ?? [], pinGroups(policy, q.dataset, ctx.buyer, ctx.source), q.participants.providers, ctx.now)
    if (pin) no('differencing', differencingMessage(pin, policy.differencing_window_s, who, ctx.buyer))
  }
  if (policy.privacy || q.privacy) privacyReasons(policy, q, no)
  for (const p of q.output) {
    if (p === q.participants.buyer) continue
    if (!policy.allowed_outputs.includes(p)) no('output_not_allowed', `the result would also go to ${who(p)}, who is not in allowed_outputs`)
  }
  return { accept: reasons.length === 0, reasons }
}

/**
 * protocols/privacy.md §5, §9: the query's privacy section against this provider's privacy policy (required, unit,
 * epsilon), then the signed noise plan against this provider's own t (privacy_noise). The budget is checked by
 * the ledger's atomic reservation just before ACCEPT (serve), not here.
 */
function privacyReasons(policy: Policy, q: Query, no: (code: string, message: string) => void): void {
  const pp = policy.privacy
  const qp = q.privacy
  if (pp) {
    const rules = { required: pp.required, maxEpsilonPerQuery: pp.max_epsilon_per_query, maxDeltaPerQuery: pp.budget.delta, units: pp.unit, ...(pp.assume_dishonest_providers === undefined ? {} : { assumeDishonestProviders: pp.assume_dishonest_providers }) }
    const rs = evaluatePrivacy(qp ? { epsilon: qp.epsilon, delta: qp.delta, unit: dpUnit(qp.unit) } : undefined, rules, q.dataset)
    for (const r of rs) no(r.code, r.message)
    if (rs.length > 0 || !qp) return
  }
  if (!qp) return
  const n = q.participants.providers.length
  const t = pp ? Math.max(0, Math.min(pp.assume_dishonest_providers ?? n - 2, n - 1)) : Math.max(0, n - 2)
  let check
  try {
    check = checkNoiseShares({
      epsilon: qp.epsilon,
      delta: qp.delta,
      slots: slotSensitivities(dpAggregates(q.aggregates), dpUnit(qp.unit)),
      cells: layoutOf(q).cells,
      providers: n,
      dishonest: t,
      shares: q.participants.providers.map(() => qp.noise.sigmas),
      self: 0 // every provider has the same share in a certificate (privacy.md §5)
    })
  } catch (e) {
    no('privacy_noise', `the noise plan cannot be checked: ${(e as Error).message}`)
    return
  }
  if (!check.ok) no('privacy_noise', `${check.message} (this provider assumes ${t} of the ${n} providers may collude with the buyer)`)
}

/** Plain-language lines for an operator deciding on a proposal (UI, `policy check`). */
export function describeProposal(q: Query, nameOf: (peerId: string) => string): string[] {
  const layout = layoutOf(q)
  const cols = columnsOf(q)
  return [
    `${nameOf(q.participants.buyer)} asks: "${q.title}" (query ${q.id})`,
    `dataset: ${q.dataset}; filter: ${q.filter ? formatFilter(q.filter) : 'none'}`,
    `grouped by: ${q.group_by.map((g) => `${g.name} (${domainSize(g.domain)} values)`).join(' × ') || 'nothing (one total)'} = ${layout.cells} cells`,
    `computes: ${q.aggregates.map((a) => (a.kind === 'count' ? `count ${a.name}` : `${a.kind} of ${a.column}${'clip' in a ? ` clipped to [${a.clip[0]}, ${a.clip[1]}]` : ''}`)).join(', ')}`,
    `columns read: filter [${cols.filter.join(', ')}], group_by [${cols.group_by.join(', ')}], aggregates [${cols.aggregates.join(', ')}]`,
    `with ${q.participants.providers.length} providers: ${q.participants.providers.map(nameOf).join(', ')}`,
    `the buyer learns only the totals over all providers, per cell; ${q.output.length > 1 ? `also sent to ${q.output.slice(1).map(nameOf).join(', ')}` : 'nobody else receives them'}`
  ]
}
