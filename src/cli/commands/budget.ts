// budget: this provider's privacy ledger (protocols/privacy.md §8): spent, reserved and remaining per buyer and
// data source, in the accounting's units (ρ, zCDP) and as ε at the budget's δ. Read-only.
import { openAgent } from '../../agent/agent.ts'
import { peerNamer, resolverFor } from '../../agent/context.ts'
import { ConfigError } from '../../agent/errors.ts'
import { DurableStore } from '../../agent/store.ts'
import { budgetStatus } from '../../agent/privacy-ledger.ts'
import { loadPolicy } from '../../policy/policy.ts'
import { zcdpEpsilon } from '../../privacy/accounting.ts'
import type { Output } from '../output.ts'

export async function budgetShow(home: string, o: { buyer?: string }, out: Output): Promise<void> {
  const agent = openAgent(home)
  const resolve = resolverFor(agent)
  const policy = loadPolicy(agent.paths.policy, resolve)
  if (!policy.privacy) throw new ConfigError(`${agent.paths.policy} has no privacy section: this provider keeps no privacy budget`)
  const buyer = o.buyer === undefined ? undefined : resolve(o.buyer) ?? o.buyer
  const rows = await budgetStatus(DurableStore.open(agent.paths.state), policy.privacy, buyer === undefined ? {} : { buyer })
  const { epsilon, delta, window_days } = policy.privacy.budget
  const nameOf = peerNamer(agent)
  const json = rows.map((r) => ({
    buyer: r.buyer, buyer_name: nameOf(r.buyer), source: r.source,
    spent_rho: r.spentRho, reserved_rho: r.reservedRho, remaining_rho: r.remainingRho, budget_rho: r.budgetRho,
    used_epsilon: r.usedEpsilon, remaining_epsilon: zcdpEpsilon(r.remainingRho, delta),
    budget: { epsilon, delta, window_days }, next_refresh: r.nextRefresh === null ? null : new Date(r.nextRefresh).toISOString()
  }))
  if (out.opts.json) return out.data(json)
  if (!rows.length) return out.result(`no privacy budget spent${buyer ? ` by ${o.buyer}` : ''} (budget per buyer and data source: epsilon ${epsilon}, delta ${delta}, rolling ${window_days} days)`)
  out.result([
    `budget per buyer and data source: epsilon ${epsilon}, delta ${delta}, rolling ${window_days} days (rho = zCDP units; epsilon at delta ${delta})`,
    ...json.map((r) => `${r.buyer_name}  ${r.source}: spent rho ${r.spent_rho.toPrecision(4)}, reserved ${r.reserved_rho.toPrecision(4)}, remaining ${r.remaining_rho.toPrecision(4)} of ${r.budget_rho.toPrecision(4)} (epsilon used ${r.used_epsilon.toPrecision(3)}, remaining ~${r.remaining_epsilon.toPrecision(3)})${r.next_refresh ? `; next refresh ${r.next_refresh}` : ''}`)
  ].join('\n'))
}
