// Differencing pins (negotiation.md §6.2, issue 14 §2). Two results over the same data from two
// provider sets that differ by one provider give away that provider's vector, whatever each query
// looks like (rename an aggregate, add one to max_rows_per_provider: the numbers are the same). So a
// provider pins the provider set it served per data source: within differencing_window_s it refuses
// any query on that source over a different set, from any buyer, whatever the query says.
// Pure: the pins come from the agent's durable store (src/agent/admission.ts), which also makes the
// check-and-reserve atomic.
import type { Policy } from './policy.ts'

/** One pin: this provider served `providers` on `group` (proposal `proposal`) and keeps them until `until`. */
export interface Pin {
  /** "group:<pin_group>" or "source:<resolved files or table>", prefixed "buyer:<peer id>/" under per_buyer. */
  group: string
  /** The provider set, sorted. */
  providers: string[]
  /** The proposal digest (hex) of the run that set or renewed the pin. */
  proposal: string
  buyer: string
  dataset: string
  /** ms since epoch: when the pin was written, and when it lapses. */
  at: number
  until: number
}

export const DEFAULT_PIN_GROUP = 'default'

/**
 * The groups a query on `dataset` touches: the dataset's pin_group (all datasets share "default"
 * unless the policy says otherwise) AND its resolved source, so two dataset names for the same files
 * or table are pinned together even when an operator put them in different groups.
 */
export function pinGroups(policy: Policy, dataset: string, buyer: string, source: string | undefined): string[] {
  const g = [`group:${(Object.hasOwn(policy.datasets, dataset) ? policy.datasets[dataset]?.pin_group : undefined) ?? DEFAULT_PIN_GROUP}`]
  if (source) g.push(`source:${source}`)
  return policy.differencing_scope === 'per_buyer' ? g.map((x) => `buyer:${buyer}/${x}`) : g
}

export const providerSet = (providers: readonly string[]): string[] => [...new Set(providers)].sort()
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/** The earliest live pin on any of `groups` whose provider set differs from `providers`, if any. */
export function differencingConflict(pins: readonly Pin[], groups: readonly string[], providers: readonly string[], now: number): Pin | null {
  const set = providerSet(providers)
  const hits = pins.filter((p) => p.until >= now && groups.includes(p.group) && !sameSet(providerSet(p.providers), set))
  return hits.sort((a, b) => a.at - b.at)[0] ?? null
}

/** What a pin group says, for a buyer: the pin_group's name, never a source's path (that is the provider's own). */
function describeGroup(group: string): string {
  const g = group.replace(/^buyer:[^/]*\//, '')
  return g.startsWith('group:') ? `pin group "${g.slice('group:'.length)}"` : 'the same data source'
}

/**
 * The reason for `differencing`, as sent to the proposing buyer (`asker`) in REJECT. It says what the buyer
 * needs to act — the provider set this data is pinned to and when the pin lapses — and names the earlier run
 * (its proposal and time) only when that run was the asker's own: another buyer's runs, and the provider's
 * file paths, are not the asker's to learn (`pins list` shows the operator everything).
 */
export function differencingMessage(p: Pin, window_s: number, who: (id: string) => string, asker: string): string {
  const run = p.buyer === asker
    ? ` (dataset "${p.dataset}") to providers {${p.providers.map(who).join(', ')}} in your run of proposal ${p.proposal.slice(0, 16)}… (${new Date(p.at).toISOString()})`
    : ` to providers {${p.providers.map(who).join(', ')}} in a run for another buyer`
  return `within differencing_window_s (${window_s} s) this provider already served ${describeGroup(p.group)}${run}; ` +
    'another provider set over the same data would isolate a provider\'s data. ' +
    `The pin lapses at ${new Date(p.until).toISOString()}; its operator can clear it with \`mpc-agent pins clear\``
}
