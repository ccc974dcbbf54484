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
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
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
  opts: { signal?: AbortSignal; timeoutMs?: number; counters?: StreamChannelOptions['counters'] } = {}
): Promise<Channel> {
  const ma = typeof addr === 'string' ? multiaddr(addr) : addr
  const peer = peerIdOf(ma.toString())
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? DIAL_TIMEOUT_MS)]
  if (opts.signal) signals.push(opts.signal)
  let stream: Stream
  try {
    stream = await node.dialProtocol(ma, protocol, { signal: AbortSignal.any(signals) })
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    throw new PeerUnreachableError(peer, (err as Error).message)
  }
  return channelFromStream(stream, peer, { counters: opts.counters })
}
