// Ed25519 signatures over labelled digests with the agent's libp2p identity key.
// Pure: keys are raw bytes (32-byte seed, 32-byte public key).
import { ed25519 } from '@noble/curves/ed25519.js'
import { labelledHash } from './hash.ts'
import { canonicalBytes } from './canonical.ts'

export interface Signer {
  /** The signer's peer ID string (base58btc identity multihash). */
  readonly peerId: string
  sign(message: Uint8Array): Uint8Array
}

export function signerFromSeed(peerId: string, seed: Uint8Array): Signer {
  if (seed.length !== 32) throw new TypeError(`expected Ed25519 seed of length 32, got length=${seed.length}`)
  const sk = Uint8Array.from(seed)
  return { peerId, sign: (m) => ed25519.sign(m, sk) }
}

export function verifySignature(publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false
  try {
    return ed25519.verify(sig, message, publicKey)
  } catch {
    return false
  }
}

/** The bytes actually signed for a JSON statement: H(label, JCS(statement)). */
export function statementDigest(label: string, statement: unknown): Uint8Array {
  return labelledHash(label, canonicalBytes(statement))
}
