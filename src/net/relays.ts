// Agents behind NAT (README "Across firewalls"): listening through circuit relays, keeping the
// reservations alive, telling direct from relayed links, and sizing a run against a relay's limit.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'

export interface RelayRef {
  name: string
  /** The relay's own multiaddr, ending in /p2p/<relay peer ID>. */
  addr: string
  peerId: string
}

/** How a connection to a peer runs. `upgraded`: a direct connection to a peer we had to reach through a relay (DCUtR or a direct dial succeeded). */
export type LinkKind = 'direct' | 'relayed' | 'upgraded'

export interface Link {
  kind: LinkKind
  /** The relay's peer ID, for a relayed link. */
  relay?: string
  /** Bytes the relay still lets this connection carry (both directions), if it announced a limit. */
  remainingBytes?: bigint
}

export function isCircuit(addr: Multiaddr | string): boolean {
  return (typeof addr === 'string' ? multiaddr(addr) : addr).getComponents().some((c) => c.name === 'p2p-circuit')
}

/** The relay's peer ID in a /…/p2p/<relay>/p2p-circuit/… address, or null. */
export function relayOfAddr(addr: Multiaddr | string): string | null {
  const comps = (typeof addr === 'string' ? multiaddr(addr) : addr).getComponents()
  const at = comps.findIndex((c) => c.name === 'p2p-circuit')
  if (at <= 0) return null
  const before = comps[at - 1]
  return before?.name === 'p2p' ? before.value ?? null : null
}

/** The link to `peer` right now: a direct connection wins over a relayed one (libp2p also prefers it for new streams). */
export function linkTo(connections: Connection[], configuredAddr?: string): Link | null {
  const open = connections.filter((c) => c.status === 'open')
  const direct = open.find((c) => !isCircuit(c.remoteAddr) && c.limits == null)
  if (direct) return { kind: configuredAddr && isCircuit(configuredAddr) ? 'upgraded' : 'direct' }
  const relayed = open.find((c) => isCircuit(c.remoteAddr))
  if (!relayed) return null
  return { kind: 'relayed', relay: relayOfAddr(relayed.remoteAddr) ?? undefined, ...(relayed.limits?.bytes != null ? { remainingBytes: relayed.limits.bytes } : {}) }
}

/**
 * An upper estimate of the bytes one run puts on the buyer–provider connection (both directions,
 * as a relay counts them): the provider's vector of T = L + 4 words (masked-sum.md §4), plus 1 %
 * for framing (CHUNK headers, yamux and Noise per-frame overhead are each below 0.1 %), plus a
 * fixed 64 KiB and 8 KiB per provider for the negotiation and masked-sum control messages (the
 * certificate and INCLUSION list grow with N).
 */
export function runBytesPerLink(vectorLength: number, providers: number): bigint {
  const vector = BigInt(vectorLength + 4) * 8n
  return vector + vector / 100n + 64n * 1024n + BigInt(providers) * 8n * 1024n
}

export function mib(bytes: bigint): string {
  return `${(Number(bytes) / (1024 * 1024)).toFixed(1)} MiB`
}

/** What the agent needs from libp2p's transport manager to (re-)listen on a relay. */
export interface RelayListener {
  listen(addrs: Multiaddr[]): Promise<void>
}

/** A libp2p service exposing the transport manager's listen(): how a reservation is re-made. */
export function relayListenerService(): (components: { transportManager: RelayListener }) => RelayListener {
  return (components) => ({ listen: (addrs) => components.transportManager.listen(addrs) })
}

export interface ReservationKeeper {
  /** Resolves once every relay was tried once (reserved or failed). */
  first: Promise<void>
  /** The relays we currently hold a reservation on (their circuit addresses are announced). */
  reserved(): string[]
  stop(): void
}

/**
 * Keep a reservation on every configured relay. js-libp2p drops a "configured" reservation when the
 * relay connection closes and does not make it again (js-libp2p issue 3601; PITFALLS.md), so this
 * checks every `intervalMs` whether our addresses still include a circuit through each relay, and
 * listens on it again when not: a relay that restarts is re-reserved within seconds of coming back.
 */
export function keepReservations(
  node: { getMultiaddrs(): Multiaddr[]; services: { relayListener?: RelayListener } },
  relays: RelayRef[],
  o: { log: (line: string) => void; intervalMs?: number; onChange?: () => void }
): ReservationKeeper {
  const listener = node.services.relayListener
  if (!listener) throw new TypeError('keeping relay reservations needs a node built with relay support (createAgentNode without direct)')
  let stopped = false
  const held = new Set<string>()
  const hasCircuitVia = (r: RelayRef): boolean => node.getMultiaddrs().some((a) => relayOfAddr(a) === r.peerId)
  const failing = new Map<string, string>()
  const attempt = async (r: RelayRef): Promise<void> => {
    if (hasCircuitVia(r)) {
      if (!held.has(r.peerId)) {
        o.log(`listening through relay ${r.name}`)
        held.add(r.peerId)
        o.onChange?.()
      }
      failing.delete(r.peerId)
      return
    }
    if (held.delete(r.peerId)) {
      o.log(`lost the reservation on relay ${r.name}; re-reserving`)
      o.onChange?.()
    }
    try {
      peerIdFromString(r.peerId)
      await listener.listen([multiaddr(`${r.addr}/p2p-circuit`)])
      if (hasCircuitVia(r)) {
        held.add(r.peerId)
        failing.delete(r.peerId)
        o.log(`listening through relay ${r.name}`)
        o.onChange?.()
      }
    } catch (e) {
      const why = (e as Error)?.message ?? String(e)
      // said once per distinct failure, not every few seconds
      if (failing.get(r.peerId) !== why) o.log(`cannot reserve a slot on relay ${r.name} (${r.addr}): ${why}; retrying`)
      failing.set(r.peerId, why)
    }
  }
  const first = Promise.all(relays.map(attempt)).then(() => {})
  let busy = false
  const timer = setInterval(() => {
    if (stopped || busy) return
    busy = true
    void Promise.all(relays.map(attempt)).finally(() => { busy = false })
  }, o.intervalMs ?? 2000)
  timer.unref()
  return {
    first,
    reserved: () => [...held],
    stop() {
      stopped = true
      clearInterval(timer)
    }
  }
}
