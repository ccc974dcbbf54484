// The only place that builds a libp2p node: TCP + Noise + yamux + ping, and (unless direct-only) the
// circuit relay client, identify and DCUtR, with a connection gater that admits exactly the configured
// peers (the allowlist is the security boundary).
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId, PrivateKey, Stream, Connection } from '@libp2p/interface'
import { channelFromStream, type StreamChannelOptions } from './framing.ts'
import { transportCrypto } from './noise-crypto.ts'
import { installHalfWindowUpdates } from './yamux-window.ts'
import type { Channel } from '../protocol/transport.ts'
import { PeerUnreachableError } from './errors.ts'
import { DIAL_TIMEOUT_MS, MAX_INBOUND_STREAMS } from './constants.ts'
import { relayListenerService, relayOfAddr, type RelayListener, type RelayRef } from './relays.ts'

export { PeerUnreachableError }
/**
 * The services a node runs. identify, DCUtR and the relay listener exist only on a node built with
 * relay support, the default; `query run` builds a direct-only node (NodeOptions.direct) when nothing
 * it talks to is behind a relay.
 */
export type AgentServices = {
  ping: Ping
  identify?: Identify
  dcutr?: unknown
  relayListener?: RelayListener
}
export type AgentNode = Libp2p<AgentServices>

export interface NodeOptions {
  privateKey: PrivateKey
  listen: string[]
  /** Addresses others should dial (port forward, DNS name), advertised instead of the bound ones. */
  announce?: string[]
  /** Peer IDs allowed in and out. Mutable: the agent can add peers at runtime (updateAllowlist). */
  allow: Set<string>
  /** Called once per refused inbound connection, with the remote's (Noise-authenticated) peer ID. */
  onRefused?: (peerId: string, reason: string) => void
  /** Circuit relays (README "Across firewalls"): allowed to connect, never to speak our protocols. */
  relays?: RelayRef[]
  /**
   * Direct TCP only: no circuit relay transport, no identify, no DCUtR, no relay listener, and their
   * modules are not loaded. For a process that only dials configured peers at their own TCP addresses
   * and relays nothing (`query run` with no relay in its config or its peers' addresses): ~40 ms less
   * CPU for a cron job's whole run (bench/README.md, "Issue 20: the cron row, third pass"). The peers it dials still run
   * identify; its absence here only makes their identify request fail, which nothing depends on.
   */
  direct?: boolean
}

const allowlists = new WeakMap<object, Set<string>>()
const relayOnly = new WeakMap<object, Set<string>>()
const relayNames = new WeakMap<object, Map<string, string>>()

/** A relay's configured name (config.yaml relays:), else its peer ID: how failures name it. */
export function relayNameOf(node: AgentNode, id: string): string {
  return relayNames.get(node)?.get(id) ?? id
}

/**
 * Replace the node's allowlist; close open connections of peers no longer allowed and of those in
 * `reset` (a changed address or role: their runs must not go on under the old entry). Returns the
 * peer IDs whose connections were closed.
 */
export async function updateAllowlist(node: AgentNode, allowed: Iterable<string>, reset: Iterable<string> = []): Promise<string[]> {
  const set = allowlists.get(node)
  if (!set) throw new Error('node was not created by createAgentNode')
  set.clear()
  for (const id of allowed) set.add(id)
  const close = new Set(reset)
  const closed: string[] = []
  const relays = relayOnly.get(node) ?? new Set()
  for (const c of node.getConnections()) {
    const id = c.remotePeer.toString()
    if ((!set.has(id) && !relays.has(id)) || close.has(id)) {
      if (!closed.includes(id)) closed.push(id)
      await c.close().catch(() => c.abort(new Error('peer removed from the allowlist')))
    }
  }
  return closed
}

/**
 * What a failed dial means, in words a user can act on (never "undefined"): the other side refused
 * the TCP connection (nothing listens there), did not answer in time, or accepted TCP and then
 * dropped us after the Noise handshake (its allowlist does not have us, or the peer ID is wrong).
 */
export function describeDialError(err: unknown, addr: string, timeoutMs: number, relayName: (id: string) => string = (id) => id): string {
  const errs: unknown[] = err instanceof AggregateError && err.errors.length ? err.errors : [err]
  const text = errs.map((e) => {
    // libp2p sometimes rejects with a bare StreamCloseEvent (no name, no message): the remote closed
    // the connection right after the handshake, as a gater that does not know us does
    if (e instanceof Event) return `event ${e.type}`
    const x = e as { name?: string; code?: string; message?: string; cause?: { code?: string } } | undefined
    return [x?.name, x?.code, x?.cause?.code, x?.message].filter(Boolean).join(' ')
  }).join(' | ')
  if (/ECONNREFUSED/.test(text)) return `connection refused at ${addr} (is \`mpc-agent serve\` running there, on that port?)`
  // a /p2p-circuit address: the failure is on the way through the relay, not necessarily the peer's
  const relayId = relayOfAddr(addr)
  const relay = relayId == null ? null : relayName(relayId)
  if (relay != null && /NO_RESERVATION|no reservation/i.test(text)) return `via relay ${relay}: the peer holds no reservation on that relay (is its \`serve\` running, with the relay in \`relays:\`?)`
  if (relay != null && /PERMISSION_DENIED|permission denied/i.test(text)) return `via relay ${relay}: the relay refused to connect us (this agent or the peer is not in the relay's allowlist: \`mpc-agent relay allow\`)`
  if (relay != null && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|Timeout|timed out|aborted/i.test(text) && !/event close/.test(text)) {
    return `via relay ${relay}: the relay did not answer (${/ECONNREFUSED/.test(text) ? 'connection refused' : /UNREACH/.test(text) ? 'no route' : 'timeout'}; is the relay running and reachable?)`
  }
  if (relay != null && /ECONNRESET|EPIPE|closed|reset|event close|EncryptionFailed|MuxerUnavailable|StreamReset|ConnectionClosed|ProtocolSelect|UnsupportedProtocol/i.test(text)) {
    return `via relay ${relay}: the connection was closed after a handshake: the relay's allowlist does not have this agent (\`mpc-agent relay allow\` on the relay), or the peer's allowlist does not (ask its operator to \`peers import\` your \`mpc-agent id --entry\`)`
  }
  if (/EHOSTUNREACH|ENETUNREACH/.test(text)) return `no route to ${addr}`
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return `cannot resolve the host of ${addr}`
  if (/UnexpectedPeer|unexpected peer|InvalidPeerId/i.test(text)) return `the agent at ${addr} has a different peer ID than configured (it was re-initialised, or the address is another agent's)`
  if (/Timeout|timed out|no answer within|AbortError|aborted/i.test(text)) return `no answer within ${Math.round(timeoutMs / 1000)} s from ${addr} (firewall, wrong host, or the peer is overloaded)`
  if (/ECONNRESET|EPIPE|closed|reset|event close|EncryptionFailed|MuxerUnavailable|StreamReset|ConnectionClosed|ProtocolSelect|UnsupportedProtocol/i.test(text)) {
    return `${addr} accepted the connection and then closed it: its allowlist probably does not have this agent (ask its operator to \`peers import\` your \`mpc-agent id --entry\`)`
  }
  return text ? `dial ${addr} failed: ${text}` : `dial ${addr} failed without a reason`
}


export async function createAgentNode(opts: NodeOptions): Promise<AgentNode> {
  installHalfWindowUpdates() // yamux window updates at half the window, as hashicorp/yamux (yamux-window.ts)
  const relayIds = new Set((opts.relays ?? []).map((r) => r.peerId))
  // the gater admits peers and our relays; handleProtocol keeps relays out of our protocols
  const denied = (p: PeerId): boolean => !opts.allow.has(p.toString()) && !relayIds.has(p.toString())
  // the first point at which an inbound peer's identity is known: log who was turned away, and why
  const deniedInbound = (p: PeerId): boolean => {
    const no = denied(p)
    if (no) opts.onRefused?.(p.toString(), 'not in the allowlist (config.yaml peers)')
    return no
  }
  if (opts.direct && (opts.relays?.length || opts.listen.length)) throw new TypeError('a direct-only node neither listens nor uses relays')
  // loaded only for a node that may use relays (the relay client is ~1/6 of libp2p's code)
  const relaying = opts.direct ? null : await import('./relay-services.ts')
  const services: ServiceFactoryMap<AgentServices> = relaying
    ? {
        identify: relaying.identify(),
        ping: ping(),
        // DCUtR: try to turn a relayed connection into a direct one (hole punching; measured, not assumed)
        dcutr: relaying.dcutr(),
        relayListener: relayListenerService()
      }
    : { ping: ping() }
  const node: AgentNode = await createLibp2p<AgentServices>({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen, ...(opts.announce?.length ? { announce: opts.announce } : {}) },
    // circuit relay v2 client: dial peers' /p2p-circuit addresses, listen through our relays
    transports: relaying ? [tcp(), relaying.circuitRelayTransport({ reservationCompletionTimeout: 10_000 })] : [tcp()],
    // node:crypto ChaCha20-Poly1305 keyed once per session key, no output copy (noise-crypto.ts)
    connectionEncrypters: [noise({ crypto: transportCrypto })],
    // The receive window must not exceed the read buffer: yamux's default 16 MiB window against a
    // 4 MiB read buffer aborts a stream whenever the reader lags (a buyer summing N vectors). 1 MiB
    // windows: the buyer receives N streams at once, and at N >= 3 a larger window bought no speed
    // (bench/README.md "Transport") but cost memory: 64 -> 51 MB (N = 3) and 113 -> 80 MB (N = 10) buyer
    // peak at a million cells. One stream alone runs ~20 % slower than with 4 MiB.
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: 1024 * 1024, maxReadBufferLength: 8 * 1024 * 1024 } })],
    // a provider's event loop can be busy for seconds masking a large vector; libp2p's 10 s default
    // for answering a new stream's protocol negotiation then kills legitimate streams
    // a run with N providers has each of them dial up to N − 1 co-providers at once: libp2p's default of
    // 10 pending inbound connections and 5 connections per second per source IP (on loopback or
    // behind one NAT every peer shares it) refused dials in runs of 6 or more providers. The
    // allowlist gater, not a rate limit, is the admission control.
    connectionManager: { inboundStreamProtocolNegotiationTimeout: 60_000, outboundStreamProtocolNegotiationTimeout: 60_000, maxIncomingPendingConnections: 256, inboundConnectionThreshold: 1000 },
    // libp2p pings every connection every 10 s and by default ABORTS it when a ping times out; a ping
    // queued behind megabytes of vector data on a busy 2-core machine does time out, which killed
    // large runs mid-stream. Silence is the protocol's job (phase deadlines, masked-sum.md check 8).
    connectionMonitor: { abortConnectionOnPingFailure: false },
    connectionGater: {
      denyDialPeer: denied,
      denyInboundEncryptedConnection: deniedInbound,
      denyOutboundEncryptedConnection: denied,
      denyInboundUpgradedConnection: denied,
      denyOutboundUpgradedConnection: denied,
      // a relayed connection's remote is checked again once its own Noise handshake is done (above);
      // this refuses it earlier, at the relay's STOP request, when the remote is no configured peer
      denyInboundRelayedConnection: (_relay, remote) => {
        const no = !opts.allow.has(remote.toString())
        if (no) opts.onRefused?.(remote.toString(), 'not in the allowlist (config.yaml peers), through a relay')
        return no
      }
    },
    services
  })
  allowlists.set(node, opts.allow)
  relayOnly.set(node, relayIds)
  relayNames.set(node, new Map((opts.relays ?? []).map((r) => [r.peerId, r.name])))
  return node
}

/** Handle a protocol; the handler gets a Channel whose `remote` is the Noise-authenticated peer. */
export async function handleProtocol(
  node: AgentNode,
  protocol: string,
  handler: (stream: Stream, remote: string, connection: Connection) => void | Promise<void>
): Promise<void> {
  await node.handle(protocol, async (stream, connection) => {
    const remote = connection.remotePeer.toString()
    // Defence in depth: the gater already refused unknown peers.
    if (!node.getConnections(connection.remotePeer).length) return stream.abort(new Error('no connection'))
    // a relay may connect (reservations) but is no party: it never opens our protocols
    if (relayOnly.get(node)?.has(remote) && !allowlists.get(node)?.has(remote)) return stream.abort(new Error('a relay is not a party'))
    await handler(stream, remote, connection)
    // relayed (limited) connections carry our protocols deliberately: the relay's limits are sized
    // for runs and a run that would exceed them is refused before it starts (README "Across firewalls")
  }, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_INBOUND_STREAMS, runOnLimitedConnection: true })
}

export function peerIdOf(addr: string): string {
  const id = multiaddr(addr).getComponents().findLast((c) => c.name === 'p2p')?.value // the last: a /p2p-circuit address names the relay first
  if (id == null) throw new Error(`multiaddr ${addr} has no /p2p/<peer-id> part`)
  return id
}

/** Dial `addr` (with /p2p/) and open `protocol`; unreachable peers become PeerUnreachableError. */
export async function openChannel(
  node: AgentNode,
  addr: Multiaddr | string,
  protocol: string,
  opts: {
    signal?: AbortSignal
    timeoutMs?: number
    counters?: StreamChannelOptions['counters']
    /**
     * Optimistic protocol selection (libp2p `negotiateFully: false`): the protocol ID travels with
     * the first message instead of a round trip before it. For streams whose first message is sent
     * at once (masked-sum START and XCHECK); a peer that does not speak the protocol then shows up
     * as a failed read or write, not as a failed open.
     */
    optimistic?: boolean
  } = {}
): Promise<Channel> {
  const ma = typeof addr === 'string' ? multiaddr(addr) : addr
  const peer = peerIdOf(ma.toString())
  // The dial gets its own controller, disarmed once the stream is open: a signal that fires later
  // (a plain AbortSignal.timeout) would otherwise also tear down the open stream mid-run.
  const dial = new AbortController()
  const timer = setTimeout(() => dial.abort(new Error(`no answer within ${opts.timeoutMs ?? DIAL_TIMEOUT_MS} ms`)), opts.timeoutMs ?? DIAL_TIMEOUT_MS)
  const onOuter = (): void => dial.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onOuter, { once: true })
  let stream: Stream
  try {
    stream = await node.dialProtocol(ma, protocol, { signal: dial.signal, negotiateFully: opts.optimistic !== true, runOnLimitedConnection: true })
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    throw new PeerUnreachableError(peer, describeDialError(dial.signal.aborted ? dial.signal.reason : err, ma.toString(), opts.timeoutMs ?? DIAL_TIMEOUT_MS, (id) => relayNameOf(node, id)))
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onOuter)
  }
  return channelFromStream(stream, peer, { counters: opts.counters })
}
