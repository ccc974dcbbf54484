// What a reachability check found (protocols/reach.md §4), as serve records it in serve.json and `id`
// reports it. No imports beyond types: `id` reads it without loading libp2p.
import type { AddrResult } from './protocol.ts'

/** What serve records in serve.json (`reach`) and `id` reports. */
export interface ReachReport {
  /** The relay that dialled back, by its configured name. */
  relay: string
  at: string
  /** The IP address the relay sees this agent connect from. */
  observed: string
  results: AddrResult[]
  /** Some direct address was dialled back successfully. */
  direct: boolean
}

/** One line for humans: how others can reach this agent directly, by the last check. */
export function describeReach(r: ReachReport): string {
  const ok = r.results.filter((x) => x.result === 'reachable').map((x) => x.addr)
  if (ok.length) return `directly at ${ok.join(', ')} (relay ${r.relay} dialled back, ${r.at})`
  return `not directly from outside (relay ${r.relay} sees this agent at ${r.observed} and could not dial it back at ${r.results.length} address${r.results.length === 1 ? '' : 'es'}, ${r.at})`
}
