// Domain-separated SHA-256. Every digest in the protocols is H(label, parts...) where
// label names purpose and protocol version (protocols/negotiation.md §2, masked-sum.md §3).
import { sha256 } from '@noble/hashes/sha2.js'
import { concat, lp, utf8 } from './bytes.ts'
import { canonicalBytes } from './canonical.ts'

export function labelledHash(label: string, ...parts: Uint8Array[]): Uint8Array {
  return sha256(concat(lp(utf8(label)), ...parts.map(lp)))
}

/** H(label, JCS(value)): the digest of a JSON structure. */
export function jsonDigest(label: string, value: unknown): Uint8Array {
  return labelledHash(label, canonicalBytes(value))
}

export { sha256 }
