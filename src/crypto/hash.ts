// Domain-separated SHA-256. Every digest in the protocols is H(label, parts...) where
// label names purpose and protocol version (protocols/negotiation.md §2, masked-sum.md §3).
import { createHash } from 'node:crypto'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8 } from './bytes.ts'
import { canonicalBytes } from './canonical.ts'

/**
 * SHA-256(lp(label) ‖ lp(part)…), fed to node:crypto piece by piece: the result commitment hashes
 * a whole result vector (8 MB at a million cells), which a concatenated copy through the pure-JS
 * hash took tens of milliseconds for.
 */
export function labelledHash(label: string, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  const len = new Uint8Array(4)
  const dv = new DataView(len.buffer)
  for (const p of [utf8(label), ...parts]) {
    dv.setUint32(0, p.length, false)
    h.update(len)
    h.update(p)
  }
  return new Uint8Array(h.digest())
}

/** H(label, JCS(value)): the digest of a JSON structure. */
export function jsonDigest(label: string, value: unknown): Uint8Array {
  return labelledHash(label, canonicalBytes(value))
}

export { sha256 }
