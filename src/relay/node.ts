// The relay's libp2p node: TCP + Noise + yamux + identify + ping + circuit relay v2 server, with a
// gater that admits only the peers in relay.yaml's allowlist. It terminates Noise only on its OWN
// connections with each member (to speak the hop/stop protocols); a relayed connection between two
// members is a byte pipe between two of its streams (createLimitedRelay), over which the two
// members run their own Noise handshake end to end: the relay forwards their ciphertext.
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { transportCrypto } from '../net/noise-crypto.ts'
import type { RelayLimits } from './limits.ts'

export type RelayNode = Libp2p<{ identify: Identify; ping: Ping; relay: CircuitRelayService }>

export interface RelayNodeOptions {
  privateKey: PrivateKey
  listen: string[]
  announce?: string[]
  /** Peer IDs allowed to connect, reserve and be connected through this relay. Mutable (SIGHUP). */
  allow: Set<string>
  limits: RelayLimits
  /** Called for each refusal, with the peer ID(s) and what was refused: logged, never silent. */
  onRefused?: (what: 'connection' | 'reservation' | 'relayed connection', peers: string[]) => void
}

export async function createRelayNode(o: RelayNodeOptions): Promise<RelayNode> {
  const denied = (p: PeerId): boolean => !o.allow.has(p.toString())
  const node = await createLibp2p({
    privateKey: o.privateKey,
    addresses: { listen: o.listen, ...(o.announce?.length ? { announce: o.announce } : {}) },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: transportCrypto })],
    // same windows as an agent (net/node.ts): the relay pipes one stream into another, so its read
    // buffer per relayed stream bounds its memory per circuit
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: 1024 * 1024, maxReadBufferLength: 8 * 1024 * 1024 } })],
    connectionManager: { maxIncomingPendingConnections: 256, inboundConnectionThreshold: 1000, maxConnections: 1000 },
    // a relayed circuit busy with a vector delays pings on the member's connection; silence is not
    // a reason to cut a circuit mid-run (as for agents: net/node.ts)
    connectionMonitor: { abortConnectionOnPingFailure: false },
    connectionGater: {
      // a stranger is dropped right after the Noise handshake: it can neither reserve nor connect
      denyInboundEncryptedConnection: (p) => {
        const no = denied(p)
        if (no) o.onRefused?.('connection', [p.toString()])
        return no
      },
      denyInboundUpgradedConnection: denied,
      denyDialPeer: denied,
      denyOutboundEncryptedConnection: denied,
      denyOutboundUpgradedConnection: denied,
      // defence in depth: the same allowlist checked at each relay operation
      denyInboundRelayReservation: (p) => {
        const no = denied(p)
        if (no) o.onRefused?.('reservation', [p.toString()])
        return no
      },
      denyOutboundRelayedConnection: (src, dst) => {
        const no = denied(src) || denied(dst)
        if (no) o.onRefused?.('relayed connection', [src.toString(), dst.toString()])
        return no
      }
    },
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: o.limits.reservations,
          reservationTtl: o.limits.reservation_ttl_s * 1000,
          applyDefaultLimit: true,
          // createLimitedRelay reads the duration in milliseconds (AbortSignal.timeout); it is sent
          // to the members as is, so they see a larger number than the spec's seconds: members
          // never rely on it (net/relays.ts: only the data limit is read from the connection)
          defaultDurationLimit: o.limits.duration_s * 1000,
          defaultDataLimit: BigInt(o.limits.data_mib) * 1024n * 1024n
        },
        // each member of a run of N opens up to N relayed connections at once
        maxInboundHopStreams: 4 * o.limits.reservations,
        maxOutboundStopStreams: 4 * o.limits.reservations
      })
    }
    // ---------------------------------------------------------------------------------------
    // DIRECTORY OF PEERS (issue 18, branch `directory`): the directory service is mounted on
    // this node in relay/serve.ts (see the marked call there), after the node is created and
    // before it starts serving; it registers its own protocol handler on `node`.
    // ---------------------------------------------------------------------------------------
  })
  return node
}
