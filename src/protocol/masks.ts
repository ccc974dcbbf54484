// Double masking in Z_2^64 (protocols/masked-sum.md §4): provider i sends
//   y_i = x_i + PRG(k_self_i) + Σ_{j : i < j} PRG(k_ij) − Σ_{j : j < i} PRG(k_ij)   (mod 2^64)
// with "<" the canonical peer order (multihash bytes). Every pairwise term appears once with
// each sign, so Σ y_i = Σ x_i + Σ PRG(k_self_i); the buyer removes the self masks only after
// every provider revealed its seed (check 7). Masks are generated chunk by chunk, interleaved
// with streaming, so no party holds more than one chunk of keystream per PRG.
import { Prg } from '../crypto/prg.ts'
import { selfMaskKey } from '../crypto/kdf.ts'
import { comparePeers } from '../crypto/peer.ts'
import { wipe } from '../crypto/bytes.ts'

/** Elements per CHUNK message and per mask-generation step (512 KiB of u64). */
export const CHUNK_ELEMS = 65536

export interface PairMask {
  peer: string
  prgKey: Uint8Array
}

export class Masker {
  private readonly self: Prg
  private readonly add: Prg[]
  private readonly sub: Prg[]

  /** `pairs`: one PRG key per co-provider. Keys are copied into the ciphers; wipe yours after. */
  constructor(selfId: string, session: Uint8Array, selfSeed: Uint8Array, pairs: readonly PairMask[], opts: { zeroMasks?: boolean } = {}) {
    const k = selfMaskKey(selfSeed, session)
    this.self = new Prg(k)
    wipe(k)
    const add: Prg[] = []
    const sub: Prg[] = []
    for (const p of pairs) (comparePeers(selfId, p.peer) < 0 ? add : sub).push(new Prg(p.prgKey))
    this.add = add
    this.sub = sub
    this.zero = opts.zeroMasks === true
  }

  private readonly zero: boolean

  /** Mask the next chunk of the vector in place (x → y); chunks must be fed in order. */
  mask(x: BigUint64Array): void {
    for (let o = 0; o < x.length; o += CHUNK_ELEMS) {
      const part = x.subarray(o, Math.min(x.length, o + CHUNK_ELEMS))
      this.apply(part, this.self, 1)
      for (const g of this.add) this.apply(part, g, 1)
      for (const g of this.sub) this.apply(part, g, -1)
    }
  }

  private apply(part: BigUint64Array, g: Prg, sign: 1 | -1): void {
    g.withNext(part.length, (ks) => {
      if (this.zero) return // test-only negative control: the keystream is drawn but not applied
      if (sign === 1) accumulate(part, 0, ks)
      else subtract(part, 0, ks)
    })
  }

  destroy(): void {
    this.self.destroy()
    for (const g of [...this.add, ...this.sub]) g.destroy()
  }
}

/** Subtract PRG(k_self) for a revealed seed from the buyer's running sum, chunk by chunk. */
export function removeSelfMask(sum: BigUint64Array, session: Uint8Array, seed: Uint8Array): void {
  const k = selfMaskKey(seed, session)
  const g = new Prg(k)
  wipe(k)
  for (let o = 0; o < sum.length; o += CHUNK_ELEMS) {
    const n = Math.min(CHUNK_ELEMS, sum.length - o)
    g.withNext(n, (ks) => subtract(sum, o, ks))
  }
  g.destroy()
}

// Z_2^64 arithmetic on 32-bit halves (little-endian host, checked in src/crypto/prg.ts). V8 can
// compile `acc[i] + src[i]` on BigUint64Arrays to plain 64-bit adds (~1 ns a value), but that
// optimisation is fragile: measured here, the same loop fell back to allocating BigInts (30x slower,
// ~30 ns a value) after a deoptimisation, and did so inside the agents. Limb arithmetic on Int32Array
// views costs ~2 ns a value and never falls off that cliff.

function limbs(a: BigUint64Array, offset: number, n: number): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset + offset * 8, n * 2)
}

/** Add `src` into `acc` at `offset` (mod 2^64). */
export function accumulate(acc: BigUint64Array, offset: number, src: BigUint64Array): void {
  if (offset + src.length > acc.length) throw new RangeError(`accumulate: ${src.length} values at ${offset} overrun ${acc.length}`)
  const a = limbs(acc, offset, src.length)
  const b = limbs(src, 0, src.length)
  for (let i = 0; i < b.length; i += 2) {
    const lo = ((a[i] as number) >>> 0) + ((b[i] as number) >>> 0) // < 2^33, exact
    a[i] = lo | 0
    a[i + 1] = ((a[i + 1] as number) + (b[i + 1] as number) + (lo > 0xffffffff ? 1 : 0)) | 0
  }
}

/** Subtract `src` from `acc` at `offset` (mod 2^64). */
export function subtract(acc: BigUint64Array, offset: number, src: BigUint64Array): void {
  if (offset + src.length > acc.length) throw new RangeError(`subtract: ${src.length} values at ${offset} overrun ${acc.length}`)
  const a = limbs(acc, offset, src.length)
  const b = limbs(src, 0, src.length)
  for (let i = 0; i < b.length; i += 2) {
    const lo = ((a[i] as number) >>> 0) - ((b[i] as number) >>> 0) // in (−2^32, 2^32), exact
    a[i] = lo | 0
    a[i + 1] = ((a[i + 1] as number) - (b[i + 1] as number) - (lo < 0 ? 1 : 0)) | 0
  }
}
