// The relay's side of the reachability check (protocols/reach.md §3): dial a member back at the
// addresses it names, only at the IP it connects from and only as its own peer ID, and say which
// dial-backs completed a Noise handshake. Mounted by `relay serve` beside the directory.
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { channelFromStream } from '../net/framing.ts'
import { isCircuit } from '../net/relays.ts'
import { safeText } from '../protocol/bounded-json.ts'
import {
  REACH_PROTOCOL, MAX_FRAME_BYTES, MAX_CONCURRENT_CHECKS, REQUEST_TIMEOUT_MS, DIAL_BACK_TIMEOUT_MS, MIN_INTERVAL_MS,
  decodeReachRequest, dialBackPlan, encodeReach, tcpTarget, ReachProtocolError, type ReachResponse
} from './protocol.ts'

export interface ReachServerOptions {
  /** One line per check (peer ID, observed address, verdicts) and per refused request. */
  log: (line: string) => void
  dialBackTimeoutMs?: number
  /** Checks dialling at once, over all members (default MAX_CONCURRENT_CHECKS); one more is told to ask later. */
  maxConcurrent?: number
}

interface CheckState { last: Map<string, number>; running: number }

export async function mountReach(node: Libp2p, o: ReachServerOptions): Promise<{ stop(): Promise<void> }> {
  const state: CheckState = { last: new Map(), running: 0 }
  await node.handle(REACH_PROTOCOL, (stream: Stream, connection: Connection) => {
    void serveCheck(node, stream, connection, state, o).catch((err: unknown) => {
      o.log(`reach: internal error answering ${connection.remotePeer.toString()}: ${(err as Error)?.message ?? String(err)}`)
      stream.abort(err as Error)
    })
  }, { maxInboundStreams: 1, maxOutboundStreams: 1 })
  return { stop: () => node.unhandle(REACH_PROTOCOL) }
}

async function serveCheck(node: Libp2p, stream: Stream, connection: Connection, state: CheckState, o: ReachServerOptions): Promise<void> {
  const { last } = state
  const remote = connection.remotePeer.toString()
  const ch = channelFromStream(stream, remote, { maxFrameBytes: MAX_FRAME_BYTES })
  const answer = async (res: ReachResponse): Promise<void> => {
    try {
      await ch.send(encodeReach(res))
      await ch.close()
    } catch {
      // the member went away: nothing to tell it
    }
  }
  let addrs: string[]
  try {
    addrs = decodeReachRequest(await ch.receive({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).addrs
  } catch (err) {
    const e = err as Error
    const detail = e instanceof ReachProtocolError ? e.message : e.name === 'TimeoutError' ? `no request within ${REQUEST_TIMEOUT_MS} ms` : 'no request'
    o.log(`reach: refused a request from ${remote}: ${safeText(detail, 200)}`)
    return answer({ v: 1, type: 'error', detail })
  }
  // the address the member connects from is the only one the relay will dial: over a relayed
  // connection there is none to see
  const seen = isCircuit(connection.remoteAddr) ? null : tcpTarget(connection.remoteAddr.toString())
  if (!seen) return answer({ v: 1, type: 'error', detail: 'ask over a direct TCP connection to the relay' })
  const now = Date.now()
  for (const [k, t] of last) if (now - t >= MIN_INTERVAL_MS) last.delete(k)
  if (last.has(remote)) return answer({ v: 1, type: 'error', detail: `one check per ${MIN_INTERVAL_MS / 1000} s per member: ask again later` })
  // in total as well as per member: at most maxConcurrent checks dial at once, whoever asks
  if (state.running >= (o.maxConcurrent ?? MAX_CONCURRENT_CHECKS)) return answer({ v: 1, type: 'error', detail: 'the relay is checking other members right now: ask again later' })
  last.set(remote, now)
  state.running++
  try {
    return await dialBack(node, connection, remote, seen.ip, addrs, o, answer)
  } finally {
    state.running--
  }
}

async function dialBack(node: Libp2p, connection: Connection, remote: string, ip: string, addrs: string[], o: ReachServerOptions, answer: (res: ReachResponse) => Promise<void>): Promise<void> {
  const plan = dialBackPlan(remote, ip, addrs)
  for (const p of plan) {
    if (!p.target) continue
    try {
      // a new connection, not the one the member holds to us; the gater admits only members
      const c = await node.dial(multiaddr(p.target), { force: true, signal: AbortSignal.timeout(o.dialBackTimeoutMs ?? DIAL_BACK_TIMEOUT_MS) })
      const ok = c.remotePeer.equals(connection.remotePeer)
      p.verdict = ok ? 'reachable' : 'unreachable'
      p.detail = ok ? 'dialled back: TCP connect and Noise handshake as this peer ID' : 'another peer answered there'
      await c.close().catch(() => c.abort(new Error('dial-back done')))
    } catch (err) {
      const e = err as Error & { cause?: Error; code?: string }
      p.verdict = 'unreachable'
      p.detail = safeText(`dial-back failed: ${e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${(o.dialBackTimeoutMs ?? DIAL_BACK_TIMEOUT_MS) / 1000} s` : (e.cause?.message ?? e.message ?? e.name)}`, 200)
    }
  }
  const results = plan.map((p) => ({ addr: p.addr, result: p.verdict ?? 'unreachable', detail: p.detail ?? '' }))
  o.log(`reach: ${remote} connects from ${ip}: ${results.map((r) => `${r.addr} ${r.result}`).join(', ')}`)
  return answer({ v: 1, type: 'result', observed: ip, results })
}
