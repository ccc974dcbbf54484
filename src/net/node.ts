// The only place that builds a libp2p node: TCP + Noise + yamux + identify + ping, with a
// connection gater that admits exactly the configured peers (the allowlist is the security boundary).
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId, PrivateKey, Stream, Connection } from '@libp2p/interface'
import { channelFromStream, type StreamChannelOptions } from './framing.ts'
import { transportCrypto } from './noise-crypto.ts'
import type { Channel } from '../protocol/transport.ts'
import { PeerUnreachableError } from './errors.ts'
import { DIAL_TIMEOUT_MS, MAX_INBOUND_STREAMS } from './constants.ts'

export { PeerUnreachableError }
export type AgentNode = Libp2p<{ identify: Identify; ping: Ping }>

export interface NodeOptions {
  privateKey: PrivateKey
  listen: string[]
  /** Peer IDs allowed in and out. Mutable: the agent can add peers at runtime. */
  allow: Set<string>
}


export async function createAgentNode(opts: NodeOptions): Promise<AgentNode> {
  const denied = (p: PeerId): boolean => !opts.allow.has(p.toString())
  return createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
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
      denyInboundEncryptedConnection: denied,
      denyOutboundEncryptedConnection: denied,
      denyInboundUpgradedConnection: denied,
      denyOutboundUpgradedConnection: denied
    },
    services: {
      identify: identify(),
      ping: ping()
    }
  })
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
    await handler(stream, remote, connection)
  }, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_INBOUND_STREAMS })
}

export function peerIdOf(addr: string): string {
  const id = multiaddr(addr).getComponents().find((c) => c.name === 'p2p')?.value
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
    stream = await node.dialProtocol(ma, protocol, { signal: dial.signal, negotiateFully: opts.optimistic !== true })
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    throw new PeerUnreachableError(peer, (err as Error).message)
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onOuter)
  }
  return channelFromStream(stream, peer, { counters: opts.counters })
}
