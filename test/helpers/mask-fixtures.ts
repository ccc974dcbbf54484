// Deterministic mask fixtures (golden vectors, property and indistinguishability tests): parties
// from fixed seeds, masking done with the same Masker the provider runner uses.
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { x25519 } from '@noble/curves/ed25519.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8 } from '../../src/crypto/bytes.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { pairKeys } from '../../src/crypto/kdf.ts'
import { Masker } from '../../src/protocol/masks.ts'

export interface FixedParty {
  peerId: string
  ephPrivate: Uint8Array
  ephPublic: Uint8Array
  selfSeed: Uint8Array
}

export const seedOf = (label: string): Uint8Array => sha256(utf8(label))

export async function fixedParties(n: number, tag = 'golden'): Promise<FixedParty[]> {
  const out: FixedParty[] = []
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', seedOf(`${tag}/identity/${i}`))
    const ephPrivate = seedOf(`${tag}/ephemeral/${i}`)
    out.push({ peerId: peerIdFromPrivateKey(key).toString(), ephPrivate, ephPublic: x25519.getPublicKey(ephPrivate), selfSeed: seedOf(`${tag}/self/${i}`) })
  }
  return out.sort((a, b) => comparePeers(a.peerId, b.peerId))
}

/** y_i for each party (copies; inputs untouched). */
export function maskAll(parties: FixedParty[], session: Uint8Array, xs: BigUint64Array[], opts: { zeroMasks?: boolean } = {}): BigUint64Array[] {
  return parties.map((p, i) => {
    const pairs = parties.filter((q) => q !== p).map((q) => ({
      peer: q.peerId,
      prgKey: pairKeys(session, p.ephPrivate, { peerId: p.peerId, ephemeralPublic: p.ephPublic }, { peerId: q.peerId, ephemeralPublic: q.ephPublic }).prgKey
    }))
    const m = new Masker(p.peerId, session, p.selfSeed, pairs, opts)
    const y = (xs[i] as BigUint64Array).slice()
    m.mask(y)
    m.destroy()
    return y
  })
}
