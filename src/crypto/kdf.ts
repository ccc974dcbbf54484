// Key schedule of the masked sum (protocols/masked-sum.md §3). Pure: X25519 from node:crypto
// (OpenSSL: ~0.1 ms per shared secret here against ~1.1 ms for @noble/curves' pure-JS ladder; a
// provider derives N − 1 of them per run, so at N = 50 this was seconds of CPU per run on 2 cores),
// HKDF and HMAC from node:crypto too (hkdfSync, createHmac: RFC 5869 and RFC 2104, the same bytes as
// @noble/hashes, which the golden-vector generator and the tests use as the independent
// implementation). Measured here (bench --cpu-prof, N = 5, L = 1k): @noble/hashes' HMAC, run a
// handful of times per run and never warm, took ~3 ms per pair key, the largest item of a provider's
// run; node:crypto takes ~10 µs.
//   pair:    X25519(eph_i, eph_j) → HKDF-SHA-256(salt = session, info = pair info) → 64 bytes
//            = PRG key (32) ‖ key-confirmation MAC key (32)
//   self:    HKDF-SHA-256(ikm = s_i, salt = session, info = lp(SELF_LABEL)) → PRG key (32)
//   confirm: HMAC-SHA-256(confirm key, lp(CONFIRM_LABEL) ‖ lp(session) ‖ lp(mh_from) ‖ lp(mh_to))
import { createHmac, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { concat, lp, utf8, wipe } from './bytes.ts'
import { comparePeers, parsePeer } from './peer.ts'

export const PAIR_LABEL = 'mpc-agent/masked-sum/v4/pair'
export const SELF_LABEL = 'mpc-agent/masked-sum/v4/self'
export const CONFIRM_LABEL = 'mpc-agent/masked-sum/v4/confirm'

export class KeyAgreementError extends Error {
  override name = 'KeyAgreementError'
}

export interface EphemeralKeyPair {
  publicKey: Uint8Array
  privateKey: Uint8Array
}

// RFC 8410 DER prefixes: raw 32-byte X25519 keys in and out of node:crypto's KeyObjects
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex')

function rawKey(der: Buffer, prefix: Buffer): Uint8Array {
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) throw new KeyAgreementError('unexpected X25519 key encoding')
  const out = new Uint8Array(der.subarray(prefix.length))
  der.fill(0)
  return out
}

/** A fresh X25519 key pair for one run (its private half is wiped after the run). */
export function ephemeralKeyPair(): EphemeralKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
  return { publicKey: rawKey(publicKey, SPKI_X25519), privateKey: rawKey(privateKey, PKCS8_X25519) }
}

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')

/**
 * X25519(k, u) of RFC 7748 §5 for raw 32-byte keys. Keys go into node:crypto as JWK, which skips
 * OpenSSL's DER decoders (the larger part of a ~0.14 ms call); pass the private key as a KeyObject
 * (x25519PrivateKey) to derive many secrets from one key without importing it each time.
 */
export function x25519Shared(privateKey: Uint8Array | KeyObject, publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new KeyAgreementError(`X25519 public key must be 32 bytes, got ${publicKey.length}`)
  const priv = privateKey instanceof Uint8Array ? x25519PrivateKey(privateKey) : privateKey
  return new Uint8Array(diffieHellman({
    privateKey: priv,
    publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(publicKey) }, format: 'jwk' })
  }))
}

let probe: KeyObject | null = null

/**
 * Whether a 32-byte X25519 public key is a low-order point (or otherwise unusable), so that any key
 * agreement with it gives the all-zero secret (RFC 7748 §6.1): X25519 with a throwaway key, as the
 * pair-key derivation would do it. ~50 µs.
 */
export function isUnusableX25519Key(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return true
  probe ??= x25519PrivateKey(ephemeralKeyPair().privateKey)
  try {
    return x25519Shared(probe, publicKey).every((b) => b === 0)
  } catch {
    return true
  }
}

/** A raw 32-byte X25519 private key as a node:crypto KeyObject (its public half computed once). */
export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new KeyAgreementError(`X25519 private key must be 32 bytes, got ${raw.length}`)
  const der = Buffer.concat([PKCS8_X25519, raw])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

export interface PairKeys {
  /** Keys the pairwise-mask PRG (masked-sum.md §3.2). */
  prgKey: Uint8Array
  /** Keys the key-confirmation MAC (check 5). */
  confirmKey: Uint8Array
}

export interface PairParty {
  peerId: string
  ephemeralPublic: Uint8Array
}

/**
 * Both ends of a pair derive the same keys: info binds both peer IDs and both ephemeral keys in
 * canonical order (multihash byte order), so the derivation does not depend on who computes it.
 */
export function pairKeys(session: Uint8Array, selfPrivate: Uint8Array | KeyObject, self: PairParty, other: PairParty): PairKeys {
  if (self.peerId === other.peerId) throw new KeyAgreementError('a peer cannot share a pair key with itself')
  let shared: Uint8Array
  try {
    shared = x25519Shared(selfPrivate, other.ephemeralPublic)
  } catch (e) {
    throw new KeyAgreementError(`X25519 with ${other.peerId} failed: ${(e as Error).message}`)
  }
  // RFC 7748 §6.1: an all-zero shared secret means a low-order public key
  if (shared.every((b) => b === 0)) throw new KeyAgreementError(`X25519 with ${other.peerId} gave the all-zero secret (low-order key)`)
  const [a, b] = comparePeers(self.peerId, other.peerId) < 0 ? [self, other] : [other, self]
  const info = concat(
    lp(utf8(PAIR_LABEL)),
    lp(parsePeer(a.peerId).multihash), lp(parsePeer(b.peerId).multihash),
    lp(a.ephemeralPublic), lp(b.ephemeralPublic)
  )
  const okm = hkdf(shared, session, info, 64)
  wipe(shared)
  const out = { prgKey: okm.slice(0, 32), confirmKey: okm.slice(32, 64) }
  wipe(okm)
  return out
}

export function selfMaskKey(seed: Uint8Array, session: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new KeyAgreementError(`self-mask seed must be 32 bytes, got ${seed.length}`)
  return hkdf(seed, session, lp(utf8(SELF_LABEL)), 32)
}

/** Directional key-confirmation tag `from` → `to`; a reflected tag does not verify. */
export function confirmTag(confirmKey: Uint8Array, session: Uint8Array, from: string, to: string): Uint8Array {
  const mac = createHmac('sha256', createSecretKey(confirmKey)) // a KeyObject: ~15 µs less than a raw key (Node 24)
  for (const part of [lp(utf8(CONFIRM_LABEL)), lp(session), lp(parsePeer(from).multihash), lp(parsePeer(to).multihash)]) mac.update(part)
  return new Uint8Array(mac.digest())
}

/** HKDF-SHA-256 (RFC 5869) of `len` bytes; the returned bytes are a copy the caller may wipe. */
function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, len: number): Uint8Array {
  // node's hkdfSync caps info at 1024 bytes (OpenSSL); ours is at most ~190 bytes (label, two multihashes, two keys)
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, len))
}
