// Reachability check through a relay (protocols/reach.md): an agent asks a relay it is a member of to
// dial it back at its direct addresses, and learns which ones work from outside. What js-libp2p's
// AutoNAT does, for a deployment that has one trusted relay instead of 4–8 unrelated peers in distinct
// networks (SECURITY.md "Relays"). Pure: messages, bounds and the choice of what the relay may dial.
import { multiaddr } from '@multiformats/multiaddr'
import { utf8 } from '../crypto/bytes.ts'
import { isJsonObject, onlyKeys, parseV1Object, safeText, type JsonLimits } from '../protocol/bounded-json.ts'

export const REACH_PROTOCOL = '/mpc-agent/reach/1.0.0'
/** Addresses one request may name (an agent has a few listen or announce addresses). */
export const MAX_ADDRS = 8
/** Largest request or response frame. */
export const MAX_FRAME_BYTES = 8 * 1024
/** Each dial-back gets this long (TCP connect + Noise handshake on a WAN path). */
export const DIAL_BACK_TIMEOUT_MS = 5_000
/** A request must arrive this soon after the stream opens. */
export const REQUEST_TIMEOUT_MS = 10_000
/** A client waits this long for the answer: every dial-back, one after another, with margin. */
export const RESPONSE_TIMEOUT_MS = (MAX_ADDRS + 2) * DIAL_BACK_TIMEOUT_MS
/** One check per member per this interval: a member cannot turn the relay into a port scanner of its own address. */
export const MIN_INTERVAL_MS = 10_000
/** Checks a relay runs at once over all members (each up to 2 × MAX_ADDRS dials of DIAL_BACK_TIMEOUT_MS). */
export const MAX_CONCURRENT_CHECKS = 4
const LIMITS: Readonly<JsonLimits> = Object.freeze({ depth: 4, keys: 8, array: MAX_ADDRS * 2, string: 256, nodes: 200 })

export type ReachRequest = { v: 1; type: 'check'; addrs: string[] }
export type AddrVerdict = 'reachable' | 'unreachable' | 'not_yours'
export interface AddrResult { addr: string; result: AddrVerdict; detail: string }
export type ReachResponse =
  | { v: 1; type: 'result'; observed: string; results: AddrResult[] }
  | { v: 1; type: 'error'; detail: string }

export class ReachProtocolError extends Error {
  override name = 'ReachProtocolError'
}

export const encodeReach = (m: ReachRequest | ReachResponse): Uint8Array => utf8(JSON.stringify(m))

const fail = (reason: string): ReachProtocolError => new ReachProtocolError(reason)
const parse = (bytes: Uint8Array): Record<string, unknown> => parseV1Object(bytes, LIMITS, fail)
const only = (m: Record<string, unknown>, keys: string[]): void => onlyKeys(m, keys, fail)

export function decodeReachRequest(bytes: Uint8Array): ReachRequest {
  const m = parse(bytes)
  only(m, ['v', 'type', 'addrs'])
  if (m.type !== 'check') throw new ReachProtocolError('expected a check request')
  if (!Array.isArray(m.addrs) || m.addrs.length === 0 || m.addrs.length > MAX_ADDRS || !m.addrs.every((a) => typeof a === 'string')) {
    throw new ReachProtocolError(`addrs: expected 1..${MAX_ADDRS} multiaddr strings`)
  }
  return { v: 1, type: 'check', addrs: m.addrs as string[] }
}

const VERDICTS: AddrVerdict[] = ['reachable', 'unreachable', 'not_yours']

export function decodeReachResponse(bytes: Uint8Array): ReachResponse {
  const m = parse(bytes)
  if (m.type === 'error') {
    only(m, ['v', 'type', 'detail'])
    if (typeof m.detail !== 'string') throw new ReachProtocolError('error: bad detail')
    return { v: 1, type: 'error', detail: safeText(m.detail, 300) }
  }
  only(m, ['v', 'type', 'observed', 'results'])
  if (m.type !== 'result' || typeof m.observed !== 'string' || !Array.isArray(m.results) || m.results.length > MAX_ADDRS * 2) throw new ReachProtocolError('result: bad fields')
  const results = m.results.map((r): AddrResult => {
    if (!isJsonObject(r) || typeof r.addr !== 'string' || !VERDICTS.includes(r.result as AddrVerdict) || typeof r.detail !== 'string') throw new ReachProtocolError('result: bad entry')
    return { addr: safeText(r.addr, 256), result: r.result as AddrVerdict, detail: safeText(r.detail, 200) }
  })
  return { v: 1, type: 'result', observed: safeText(m.observed, 64), results }
}

/** A direct TCP address: /ip4|ip6/<ip>/tcp/<port>[/p2p/<id>]; null for anything else (circuit, DNS, other transports). */
export function tcpTarget(addr: string): { ip: string; port: number; peer: string | null } | null {
  let comps
  try {
    comps = multiaddr(addr).getComponents()
  } catch {
    return null
  }
  const [ip, tcp, p2p, ...rest] = comps
  if (!ip || !tcp || rest.length || (ip.name !== 'ip4' && ip.name !== 'ip6') || tcp.name !== 'tcp') return null
  if (p2p && p2p.name !== 'p2p') return null
  const port = Number(tcp.value)
  if (!ip.value || !Number.isInteger(port) || port < 1 || port > 65_535) return null
  return { ip: ip.value, port, peer: p2p?.value ?? null }
}

export interface DialBack { addr: string; target: string | null; verdict?: AddrVerdict; detail?: string }

/**
 * What the relay dials for a request from `requester`, seen connecting from `observedIp` (reach.md §3):
 * only the requester's own peer ID, only at the address it connects from. Each named address whose IP is
 * that one is dialled as named; every other direct address is answered `not_yours` (a private address
 * behind NAT, or a third party's), and its port is tried at the observed address instead (a NAT that
 * forwards the same port). Duplicates are dialled once. Never more than 2 × MAX_ADDRS dials.
 */
export function dialBackPlan(requester: string, observedIp: string, addrs: string[]): DialBack[] {
  const plan: DialBack[] = []
  const seen = new Set<string>()
  const family = observedIp.includes(':') ? 'ip6' : 'ip4'
  const add = (addr: string, ip: string, port: number): void => {
    const target = `/${family}/${ip}/tcp/${port}/p2p/${requester}`
    if (seen.has(target)) return
    seen.add(target)
    plan.push({ addr, target })
  }
  for (const addr of addrs.slice(0, MAX_ADDRS)) {
    const t = tcpTarget(addr)
    if (!t) {
      plan.push({ addr: safeText(addr, 256), target: null, verdict: 'unreachable', detail: 'not a direct TCP address (/ip4|ip6/…/tcp/…)' })
      continue
    }
    if (t.peer && t.peer !== requester) {
      plan.push({ addr, target: null, verdict: 'not_yours', detail: 'names another peer ID' })
      continue
    }
    if (t.ip === observedIp) {
      add(addr, t.ip, t.port)
      continue
    }
    plan.push({ addr, target: null, verdict: 'not_yours', detail: `you connect from ${observedIp}, not from ${t.ip} (behind NAT, or a private address)` })
    add(`/${family}/${observedIp}/tcp/${t.port}`, observedIp, t.port)
  }
  return plan
}
