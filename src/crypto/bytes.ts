// Byte helpers shared by every layer. Pure, no I/O.
import { timingSafeEqual } from 'node:crypto'

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

export function utf8(s: string): Uint8Array {
  return enc.encode(s)
}

export function fromUtf8(b: Uint8Array): string {
  return dec.decode(b)
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

const HEX = /^(?:[0-9a-f]{2})*$/

/** Strict lowercase hex; `len` (bytes) when given must match exactly. */
export function fromHex(s: string, len?: number): Uint8Array {
  if (typeof s !== 'string' || !HEX.test(s)) throw new TypeError('expected lowercase hex string')
  if (len !== undefined && s.length !== len * 2) {
    throw new TypeError(`expected ${len} bytes of hex, got ${s.length / 2}`)
  }
  return new Uint8Array(Buffer.from(s, 'hex'))
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** u32 big-endian length prefix followed by the bytes: unambiguous concatenation. */
export function lp(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + b.length)
  new DataView(out.buffer).setUint32(0, b.length, false)
  out.set(b, 4)
  return out
}

/** Constant-time equality (lengths compared first; length is not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  return timingSafeEqual(a, b)
}

/** Lexicographic byte order, used for canonical peer ordering. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

export function wipe(...arrays: Array<Uint8Array | BigUint64Array | undefined>): void {
  for (const a of arrays) {
    if (a instanceof BigUint64Array) a.fill(0n)
    else a?.fill(0)
  }
}
