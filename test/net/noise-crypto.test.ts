// The tuned Noise cipher must be the library's cipher byte for byte: whatever one side encrypts
// the other decrypts, with either implementation on either side, and a forged tag is refused.
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { defaultCrypto, pureJsCrypto } from '@chainsafe/libp2p-noise/crypto'
import { transportCrypto } from '../../src/net/noise-crypto.ts'

// plain Uint8Array copies, so Buffer and Uint8Array results compare by content
const flat = (x: Uint8Array | { subarray(): Uint8Array }): Uint8Array => Uint8Array.from(x instanceof Uint8Array ? x : x.subarray())

describe('transportCrypto (Noise ChaCha20-Poly1305)', () => {
  const k = new Uint8Array(randomBytes(32))
  const nonce = new Uint8Array(12)
  nonce[4] = 7
  const ad = new Uint8Array(0)
  for (const n of [0, 100, 1199, 1200, 4096, 65_519]) {
    it(`${n} bytes: interoperates with the library's default and pure-JS ciphers`, () => {
      const pt = new Uint8Array(randomBytes(n))
      const ours = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, k))
      expect(ours).toEqual(flat(defaultCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, k)))
      expect(ours).toEqual(flat(pureJsCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, k)))
      expect(flat(defaultCrypto.chaCha20Poly1305Decrypt(ours.slice(), nonce, ad, k))).toEqual(pt)
      expect(flat(transportCrypto.chaCha20Poly1305Decrypt(ours.slice(), nonce, ad, k))).toEqual(pt)
      // buffer lists in, as noise passes them for multi-piece messages
      const half = Math.floor(ours.length / 2)
      const list = new Uint8ArrayList(ours.slice(0, half), ours.slice(half))
      expect(flat(transportCrypto.chaCha20Poly1305Decrypt(list as never, nonce, ad, k))).toEqual(pt)
    })
  }

  it('a flipped ciphertext bit or tag bit is refused', () => {
    const pt = new Uint8Array(randomBytes(5000))
    for (const at of [0, 2500, 5000 + 15]) {
      const c = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, k)).slice()
      c[at] = (c[at] as number) ^ 1
      expect(() => transportCrypto.chaCha20Poly1305Decrypt(c, nonce, ad, k)).toThrow()
    }
  })

  it('a key changed in place is never served from the cache', () => {
    const key = new Uint8Array(randomBytes(32))
    const pt = new Uint8Array(randomBytes(2000))
    const before = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, key)).slice()
    key[0] = (key[0] as number) ^ 1
    const after = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, key))
    expect(after).toEqual(flat(pureJsCrypto.chaCha20Poly1305Encrypt(pt, nonce, ad, key)))
    expect(after).not.toEqual(before)
  })

  it('non-empty AAD (up to 32 bytes, as Noise uses) on both paths: identical to the library, and a changed AAD is refused', () => {
    for (const adLen of [1, 16, 32]) { // Noise's AD is at most the 32-byte handshake hash
      const aad = new Uint8Array(randomBytes(adLen))
      for (const n of [100, 1200, 9000]) {
        const pt = new Uint8Array(randomBytes(n))
        const ours = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, nonce, aad, k))
        expect(ours).toEqual(flat(pureJsCrypto.chaCha20Poly1305Encrypt(pt, nonce, aad, k)))
        expect(flat(pureJsCrypto.chaCha20Poly1305Decrypt(ours.slice(), nonce, aad, k))).toEqual(pt)
        expect(flat(transportCrypto.chaCha20Poly1305Decrypt(ours.slice(), nonce, aad, k))).toEqual(pt)
        const other = aad.slice()
        other[0] = (other[0] as number) ^ 1
        expect(() => transportCrypto.chaCha20Poly1305Decrypt(ours.slice(), nonce, other, k)).toThrow()
      }
    }
  })

  it('many nonces (Noise counters 0…300 and near 2^64), one key: every message identical to the library\'s', () => {
    const key = new Uint8Array(randomBytes(32))
    const aad = new Uint8Array(randomBytes(8))
    const pt = new Uint8Array(randomBytes(1500))
    const counters = [...Array.from({ length: 301 }, (_, i) => BigInt(i)), 2n ** 32n, 2n ** 63n, 2n ** 64n - 2n]
    const seen = new Set<string>()
    for (const ctr of counters) {
      // Noise ChaChaPoly nonce: 4 zero bytes then the 64-bit counter, little-endian (Noise spec §12.3)
      const n = new Uint8Array(12)
      new DataView(n.buffer).setBigUint64(4, ctr, true)
      const ours = flat(transportCrypto.chaCha20Poly1305Encrypt(pt, n, aad, key))
      expect(ours).toEqual(flat(pureJsCrypto.chaCha20Poly1305Encrypt(pt, n, aad, key)))
      expect(flat(transportCrypto.chaCha20Poly1305Decrypt(ours.slice(), n, aad, key))).toEqual(pt)
      seen.add(Buffer.from(ours).toString('hex'))
      if (ctr > 0n) {
        // a message decrypted under a neighbouring nonce is refused
        const prev = new Uint8Array(12)
        new DataView(prev.buffer).setBigUint64(4, ctr - 1n, true)
        expect(() => transportCrypto.chaCha20Poly1305Decrypt(ours.slice(), prev, aad, key)).toThrow()
      }
    }
    expect(seen.size).toBe(counters.length) // every nonce gives a distinct ciphertext
  })
})
