// node:crypto Ed25519 must produce and accept exactly the RFC 8032 signatures @noble/curves does
// (and libp2p's keys, which peers use to verify us).
import { describe, expect, it } from 'vitest'
import { ed25519 } from '@noble/curves/ed25519.js'
import fc from 'fast-check'
import { signerFromSeed, verifySignature } from '../../src/crypto/sign.ts'

describe('Ed25519', () => {
  it('agrees with @noble/curves both ways, and rejects tampering', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
      const pub = ed25519.getPublicKey(seed)
      const sig = signerFromSeed('x', seed).sign(msg)
      expect(Buffer.from(sig).toString('hex')).toBe(Buffer.from(ed25519.sign(msg, seed)).toString('hex')) // deterministic
      expect(verifySignature(pub, msg, sig)).toBe(true)
      expect(ed25519.verify(sig, msg, pub)).toBe(true)
      const bad = Uint8Array.from(sig)
      bad[5] = (bad[5] as number) ^ 1
      expect(verifySignature(pub, msg, bad)).toBe(false)
      expect(verifySignature(pub, Uint8Array.from([...msg, 1]), sig)).toBe(false)
    }), { numRuns: 50 })
  })
  it('refuses malformed keys and signatures without throwing', () => {
    expect(verifySignature(new Uint8Array(31), new Uint8Array(1), new Uint8Array(64))).toBe(false)
    expect(verifySignature(new Uint8Array(32), new Uint8Array(1), new Uint8Array(63))).toBe(false)
    expect(verifySignature(new Uint8Array(32).fill(0xff), new Uint8Array(1), new Uint8Array(64))).toBe(false)
  })
})
