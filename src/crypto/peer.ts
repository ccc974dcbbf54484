// Peer IDs as the protocols use them: base58btc strings on the wire; Ed25519 public key and
// multihash bytes derived from them for verification and canonical ordering.
import { peerIdFromString } from '@libp2p/peer-id'
import { compareBytes } from './bytes.ts'

export class PeerIdError extends Error {
  override name = 'PeerIdError'
}

export interface ParsedPeer {
  id: string
  multihash: Uint8Array
  publicKey: Uint8Array
}

const cache = new Map<string, ParsedPeer>()

/** Parse an Ed25519 peer ID (identity multihash); anything else is refused. */
export function parsePeer(id: string): ParsedPeer {
  const hit = cache.get(id)
  if (hit) return hit
  let p
  try {
    p = peerIdFromString(id)
  } catch {
    throw new PeerIdError(`not a peer ID: ${JSON.stringify(id).slice(0, 80)}`)
  }
  if (p.type !== 'Ed25519' || p.publicKey == null) throw new PeerIdError(`peer ID ${id} is not an Ed25519 key`)
  const out = { id: p.toString(), multihash: p.toMultihash().bytes, publicKey: p.publicKey.raw }
  if (out.id !== id) throw new PeerIdError(`peer ID ${id} is not in canonical base58btc form`)
  cache.set(id, out)
  return out
}

/** Canonical order of peers: byte order of their multihash (protocols/masked-sum.md §4). */
export function comparePeers(a: string, b: string): number {
  return compareBytes(parsePeer(a).multihash, parsePeer(b).multihash)
}
