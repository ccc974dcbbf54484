// Masks cancel (property), the spec's golden vectors reproduce, and the buyer's view of masked
// vectors is indistinguishable for two input sets with equal sums (with a negative control).
import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { x25519 } from '@noble/curves/ed25519.js'
import { fromHex, toHex } from '../../src/crypto/bytes.ts'
import { confirmTag, ephemeralKeyPair, pairKeys, selfMaskKey, x25519Shared, KeyAgreementError } from '../../src/crypto/kdf.ts'
import { Prg } from '../../src/crypto/prg.ts'
import { removeSelfMask } from '../../src/protocol/masks.ts'
import { fixedParties, maskAll, seedOf } from '../helpers/mask-fixtures.ts'

const MASK = (1n << 64n) - 1n

function sumOf(vs: BigUint64Array[], L: number): BigUint64Array {
  const s = new BigUint64Array(L)
  for (const v of vs) for (let i = 0; i < L; i++) s[i] = (s[i] as bigint) + (v[i] as bigint)
  return s
}

describe('X25519 (node:crypto)', () => {
  it('RFC 7748 §6.1 test vector', () => {
    const a = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 32)
    const bPub = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 32)
    expect(toHex(x25519Shared(a, bPub))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  })

  it('fresh key pairs agree with @noble/curves, both ways', () => {
    for (let i = 0; i < 20; i++) {
      const k = ephemeralKeyPair()
      const o = x25519.keygen()
      expect(toHex(k.publicKey)).toBe(toHex(x25519.getPublicKey(k.privateKey)))
      expect(toHex(x25519Shared(k.privateKey, o.publicKey))).toBe(toHex(x25519.getSharedSecret(o.secretKey, k.publicKey)))
    }
  })
})

describe('pair keys', () => {
  it('both ends derive the same keys whichever computes (canonical order, not caller order)', async () => {
    const [a, b] = await fixedParties(2, 'order')
    if (!a || !b) throw new Error('fixture')
    const session = seedOf('session')
    const ka = pairKeys(session, a.ephPrivate, { peerId: a.peerId, ephemeralPublic: a.ephPublic }, { peerId: b.peerId, ephemeralPublic: b.ephPublic })
    const kb = pairKeys(session, b.ephPrivate, { peerId: b.peerId, ephemeralPublic: b.ephPublic }, { peerId: a.peerId, ephemeralPublic: a.ephPublic })
    expect(toHex(ka.prgKey)).toBe(toHex(kb.prgKey))
    expect(toHex(ka.confirmKey)).toBe(toHex(kb.confirmKey))
    expect(toHex(ka.prgKey)).not.toBe(toHex(ka.confirmKey))
    // directional confirmation: a reflected tag does not verify
    expect(toHex(confirmTag(ka.confirmKey, session, a.peerId, b.peerId))).not.toBe(toHex(confirmTag(ka.confirmKey, session, b.peerId, a.peerId)))
    // another session, other keys (one PRG key per pair and session)
    const k2 = pairKeys(seedOf('session2'), a.ephPrivate, { peerId: a.peerId, ephemeralPublic: a.ephPublic }, { peerId: b.peerId, ephemeralPublic: b.ephPublic })
    expect(toHex(k2.prgKey)).not.toBe(toHex(ka.prgKey))
  })

  it('a low-order X25519 public key is refused (RFC 7748 §6.1)', async () => {
    const [a, b] = await fixedParties(2, 'low')
    if (!a || !b) throw new Error('fixture')
    const zeroPoint = new Uint8Array(32) // u = 0 has order 1
    const onePoint = new Uint8Array(32); onePoint[0] = 1 // u = 1, order 4
    for (const bad of [zeroPoint, onePoint]) {
      expect(() => pairKeys(seedOf('s'), a.ephPrivate, { peerId: a.peerId, ephemeralPublic: a.ephPublic }, { peerId: b.peerId, ephemeralPublic: bad }))
        .toThrow(KeyAgreementError)
    }
  })
})

describe('masks cancel', () => {
  it('property: for random inputs and 3..6 providers, Σ y_i − Σ PRG(self) = Σ x_i mod 2^64', async () => {
    const pools = await Promise.all([3, 4, 5, 6].map((n) => fixedParties(n, `prop${n}`)))
    await fc.assert(fc.property(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 1, max: 300 }),
      fc.bigInt({ min: 0n, max: MASK }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (pi, L, base, session) => {
        const parties = pools[pi] as Awaited<ReturnType<typeof fixedParties>>
        const xs = parties.map((_, k) => BigUint64Array.from({ length: L }, (_, i) => BigInt.asUintN(64, base * BigInt(k + 1) + BigInt(i))))
        const ys = maskAll(parties, session, xs)
        const s = sumOf(ys, L)
        for (const p of parties) removeSelfMask(s, session, p.selfSeed)
        expect(s).toEqual(sumOf(xs, L))
      }
    ), { numRuns: 60 })
  })

  it('without removing one self mask the sum is still random', async () => {
    const parties = await fixedParties(3, 'partial')
    const session = seedOf('partial-session')
    const xs = parties.map(() => new BigUint64Array(64).fill(5n))
    const s = sumOf(maskAll(parties, session, xs), 64)
    for (const p of parties.slice(1)) removeSelfMask(s, session, p.selfSeed)
    expect(s.filter((v) => v === 15n).length).toBe(0)
  })
})

describe('golden vectors (protocols/vectors/masked-sum-v4.json)', () => {
  it('are reproduced bit for bit', async () => {
    const g = JSON.parse(readFileSync(new URL('../../protocols/vectors/masked-sum-v4.json', import.meta.url), 'utf8')) as GoldenFile
    const parties = await fixedParties(g.parties.length, 'golden')
    const session = fromHex(g.session, 32)
    expect(parties.map((p) => p.peerId)).toEqual(g.parties.map((p) => p.peer_id))
    parties.forEach((p, i) => {
      const gp = g.parties[i] as GoldenFile['parties'][number]
      expect(toHex(p.ephPublic)).toBe(gp.ephemeral_public)
      expect(toHex(selfMaskKey(p.selfSeed, session))).toBe(gp.self_mask_key)
    })
    for (const pk of g.pairs) {
      const a = parties[pk.a] as (typeof parties)[number]
      const b = parties[pk.b] as (typeof parties)[number]
      const k = pairKeys(session, a.ephPrivate, { peerId: a.peerId, ephemeralPublic: a.ephPublic }, { peerId: b.peerId, ephemeralPublic: b.ephPublic })
      expect(toHex(x25519.getSharedSecret(a.ephPrivate, b.ephPublic))).toBe(pk.x25519_shared)
      expect(toHex(k.prgKey)).toBe(pk.prg_key)
      expect(toHex(k.confirmKey)).toBe(pk.confirm_key)
      expect(toHex(confirmTag(k.confirmKey, session, a.peerId, b.peerId))).toBe(pk.confirm_a_to_b)
      const ks = new Prg(k.prgKey).next(new BigUint64Array(4))
      expect(Array.from(ks, String)).toEqual(pk.prg_first_words)
    }
    const xs = g.inputs.map((x) => BigUint64Array.from(x.map(BigInt)))
    const ys = maskAll(parties, session, xs)
    expect(ys.map((y) => Array.from(y, String))).toEqual(g.masked)
    const s = sumOf(ys, xs[0]?.length ?? 0)
    for (const p of parties) removeSelfMask(s, session, p.selfSeed)
    expect(Array.from(s, String)).toEqual(g.total)
  })
})

interface GoldenFile {
  session: string
  parties: Array<{ peer_id: string; ephemeral_public: string; self_mask_key: string }>
  pairs: Array<{ a: number; b: number; x25519_shared: string; prg_key: string; confirm_key: string; confirm_a_to_b: string; prg_first_words: string[] }>
  inputs: string[][]
  masked: string[][]
  total: string[]
}

describe("the buyer's view is indistinguishable for equal sums", () => {
  // Two input sets with the same total: A puts everything on provider 0, B on provider 1. The
  // buyer sees every y_i; a two-sample Kolmogorov–Smirnov test on each y_i (values / 2^64) must
  // not tell A from B at α = 0.001 (critical D = 1.95·sqrt(2/n)). Negative control: masks off.
  const L = 4096
  const critical = 1.95 * Math.sqrt(2 / L)

  function ks(a: BigUint64Array, b: BigUint64Array): number {
    const x = Array.from(a, (v) => Number(v >> 11n)).sort((p, q) => p - q)
    const y = Array.from(b, (v) => Number(v >> 11n)).sort((p, q) => p - q)
    let i = 0, j = 0, d = 0
    while (i < x.length && j < y.length) {
      if ((x[i] as number) <= (y[j] as number)) i++
      else j++
      d = Math.max(d, Math.abs(i / x.length - j / y.length))
    }
    return d
  }

  async function views(zeroMasks: boolean, revealed = false): Promise<number[]> {
    const parties = await fixedParties(3, 'indist')
    const v = BigUint64Array.from({ length: L }, (_, i) => BigInt(1000 + (i % 97) * 13))
    const zero = new BigUint64Array(L)
    const [sa, sb] = [seedOf('indist-A'), seedOf('indist-B')]
    const A = maskAll(parties, sa, [v, zero, zero], { zeroMasks })
    const B = maskAll(parties, sb, [zero, v, zero], { zeroMasks })
    if (revealed) {
      // after REVEAL the buyer holds every self seed: what is left of y_i is x_i under its pairwise masks only
      parties.forEach((p, i) => {
        removeSelfMask(A[i] as BigUint64Array, sa, p.selfSeed)
        removeSelfMask(B[i] as BigUint64Array, sb, p.selfSeed)
      })
    }
    return A.map((ya, i) => ks(ya, B[i] as BigUint64Array))
  }

  it('with masks: no y_i separates the two input sets', async () => {
    for (const d of await views(false)) expect(d).toBeLessThan(critical)
  })

  it('after every seed is revealed: no y_i − PRG(s_i) separates them either (the pairwise masks alone hide x_i)', async () => {
    // without pairwise masks y_i − PRG(s_i) would be x_i itself, which the control below tells apart
    for (const d of await views(false, true)) expect(d).toBeLessThan(critical)
  })

  it('negative control: with masks forced to zero the same test tells them apart', async () => {
    const ds = await views(true)
    expect(Math.max(...ds)).toBeGreaterThan(critical)
  })
})
