// The agent's side of the reachability check (protocols/reach.md §4): ask a relay to dial us back at our
// direct addresses. The answer is the relay's view, trusted as far as the relay is (it forwards our runs'
// ciphertext already); it changes what `serve` and `id` report, never whom the agent talks to.
import { multiaddr } from '@multiformats/multiaddr'
import { openChannel, type AgentNode } from '../net/node.ts'
import type { RelayRef } from '../net/relays.ts'
import { REACH_PROTOCOL, RESPONSE_TIMEOUT_MS, decodeReachResponse, encodeReach } from './protocol.ts'
import type { ReachReport } from './report.ts'

export { describeReach, type ReachReport } from './report.ts'

export async function checkReach(node: AgentNode, relay: RelayRef, addrs: string[], o: { signal?: AbortSignal } = {}): Promise<ReachReport> {
  const ch = await openChannel(node, multiaddr(relay.addr), REACH_PROTOCOL, { timeoutMs: 10_000, ...(o.signal ? { signal: o.signal } : {}) })
  try {
    await ch.send(encodeReach({ v: 1, type: 'check', addrs }))
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(RESPONSE_TIMEOUT_MS)]) : AbortSignal.timeout(RESPONSE_TIMEOUT_MS)
    const res = decodeReachResponse(await ch.receive({ signal }))
    if (res.type === 'error') throw new Error(`relay ${relay.name} did not check: ${res.detail}`)
    return { relay: relay.name, at: new Date().toISOString(), observed: res.observed, results: res.results, direct: res.results.some((r) => r.result === 'reachable') }
  } finally {
    await ch.close()
  }
}
