// Wire messages of /mpc-agent/masked-sum/4.0.0 (protocols/masked-sum.md §5). Every frame is one
// type byte followed by RFC 8785 JSON, except CHUNK which is binary (§5.4). Decoders check every
// field's type: nothing from the wire is trusted by shape.
import { createHash, type Hash } from 'node:crypto'
import { canonicalBytes } from '../crypto/canonical.ts'
import { concat, fromHex, lp, toHex, utf8 } from '../crypto/bytes.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import { MSG_ABORT } from './abort.ts'
import { JsonBoundsError, parseBoundedJson } from './bounded-json.ts'
import { ProtocolAbort, type AbortReason } from './errors.ts'

/** The `v` of every JSON message of this protocol version (§5). */
export const WIRE_VERSION = 4

export const MSG = {
  start: 0x10,
  xcheck: 0x11,
  xcert: 0x12,
  chunk: 0x20,
  done: 0x21,
  inclusion: 0x22,
  reveal: 0x23,
  receipt: 0x24,
  abort: MSG_ABORT
} as const

export const LABEL = {
  start: 'mpc-agent/masked-sum/v4/start',
  xcheck: 'mpc-agent/masked-sum/v4/xcheck',
  xcert: 'mpc-agent/masked-sum/v4/xcert',
  vector: 'mpc-agent/masked-sum/v4/vector',
  done: 'mpc-agent/masked-sum/v4/done',
  inclusion: 'mpc-agent/masked-sum/v4/inclusion',
  reveal: 'mpc-agent/masked-sum/v4/reveal',
  receipt: 'mpc-agent/masked-sum/v4/receipt',
  result: 'mpc-agent/masked-sum/v4/result'
} as const

/** Four canary cells follow the data part; their true value is 0 for every provider (check 6). */
export const CANARIES = 4
export const CHUNK_HEADER = 16

// Every signed body names its session, its sender (`from`, or `provider` where the sender is the
// provider the message is about) and its recipient (`to`), under a versioned label (§5): no signed
// message can be replayed into another run or shown as addressed to another peer.
export interface StartBody { v: 4; type: 'start'; session: string; from: string; to: string }
export interface StartMsg extends StartBody { sig: string }
export interface XcheckBody { v: 4; type: 'xcheck'; session: string; proposal: string; confirm: string; from: string; to: string }
export interface XcheckMsg extends XcheckBody { sig: string }
/**
 * Sent only when a co-provider's XCHECK names another session: the evidence for check 3 (§5.1). `xcheck` is the
 * digest of the sender's own XCHECK on this stream (`xcheckDigest`), so an XCERT cannot be shown beside an
 * XCHECK of another run (4.0.0).
 */
export interface XcertBody { v: 4; type: 'xcert'; session: string; xcheck: string; certificate: unknown; from: string; to: string }
export interface XcertMsg extends XcertBody { sig: string }
export interface DoneBody { v: 4; type: 'done'; session: string; provider: string; to: string; length: number; chunks: number; hash: string }
export interface DoneMsg extends DoneBody { sig: string }
export interface InclusionEntry { provider: string; length: number; chunks: number; hash: string; sig: string }
export interface InclusionBody { v: 4; type: 'inclusion'; session: string; from: string; to: string; entries: InclusionEntry[] }
export interface InclusionMsg extends InclusionBody { sig: string }
export interface RevealBody { v: 4; type: 'reveal'; session: string; provider: string; to: string; inclusion: string; seed: string }
export interface RevealMsg extends RevealBody { sig: string }
export interface ReceiptBody { v: 4; type: 'receipt'; session: string; from: string; to: string; commitment: string; cells: number }
export interface ReceiptMsg extends ReceiptBody { sig: string; result?: string[]; r?: string }

export function u64le(n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}

/**
 * The incremental hash of a provider's masked vector (§5.2), fed chunk by chunk by both ends.
 * node:crypto's native SHA-256: the buyer hashes N whole vectors per run.
 */
export function vectorHasher(session: Uint8Array, provider: string, total: number): Hash {
  return createHash('sha256').update(concat(lp(utf8(LABEL.vector)), lp(session), lp(parsePeer(provider).multihash), u64le(total)))
}

export function encodeJson(type: number, body: object): Uint8Array {
  const json = canonicalBytes(body)
  const out = new Uint8Array(1 + json.length)
  out[0] = type
  out.set(json, 1)
  return out
}

export function signBody<T extends object>(signer: Signer, label: string, body: T): T & { sig: string } {
  return { ...body, sig: toHex(signer.sign(statementDigest(label, body))) }
}

/** Verify `sig` of a signed message by `peer` over the message without its sig (and extra fields). */
export function verifyBody(peer: string, label: string, body: object, sig: string): boolean {
  try {
    return verifySignature(parsePeer(peer).publicKey, statementDigest(label, body), fromHex(sig, 64))
  } catch {
    return false
  }
}

/** The digest an XCERT names its XCHECK by: the XCHECK's signed statement digest, hex (null if it cannot be computed). */
export function xcheckDigest(m: object): string | null {
  const { sig: _sig, ...body } = m as Record<string, unknown>
  try {
    return toHex(statementDigest(LABEL.xcheck, body))
  } catch {
    return null
  }
}

/**
 * A signed message from `from` to `to` in `session` (§5): sender, recipient and session fields match
 * and the signature verifies under `label`. `sender` names the field that holds the sender.
 */
export function signedBy(m: object, label: string, from: string, to: string, session: string, sender: 'from' | 'provider' = 'from'): boolean {
  const { sig, ...body } = m as Record<string, unknown>
  return body[sender] === from && body.to === to && body.session === session && typeof sig === 'string' && verifyBody(from, label, body, sig)
}

function fail(reason: AbortReason, accused: string, detail: string): never {
  throw new ProtocolAbort({ reason, accused, detail })
}

type Shape = Record<string, 'string' | 'number' | 'hex32' | 'hex64' | 'any' | 'array'>

/**
 * Decode a JSON frame of `type` from `from`: parsed within WIRE_JSON_LIMITS (bounded-json.ts), then
 * every field checked against `shape` (extra keys refused). Throws only ProtocolAbort.
 */
export function decodeJson<T>(frame: Uint8Array, type: number, from: string, shape: Shape, optional: string[] = []): T {
  if (frame[0] !== type) fail('malformed_message', from, `expected message type 0x${type.toString(16)}, got 0x${(frame[0] ?? 0).toString(16)}`)
  let m: unknown
  try {
    m = parseBoundedJson(frame.subarray(1))
  } catch (e) {
    fail('malformed_message', from, `undecodable JSON message: ${e instanceof JsonBoundsError ? e.message : 'not JSON'}`)
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('malformed_message', from, 'message is not a JSON object')
  const o = m as Record<string, unknown>
  for (const k of Object.keys(o)) if (!(k in shape)) fail('malformed_message', from, `unexpected field "${k}"`)
  if (o.v !== WIRE_VERSION) fail('wrong_session', from, `unsupported message version ${JSON.stringify(o.v)}`)
  for (const [k, t] of Object.entries(shape)) {
    const v = o[k]
    if (v === undefined) {
      if (optional.includes(k)) continue
      fail('malformed_message', from, `missing field "${k}"`)
    }
    const ok = t === 'any' ? true
      : t === 'array' ? Array.isArray(v)
      : t === 'number' ? typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
      : t === 'string' ? typeof v === 'string' && v.length <= 200
      : typeof v === 'string' && /^[0-9a-f]*$/.test(v) && v.length === (t === 'hex32' ? 64 : 128)
    if (!ok) fail('malformed_message', from, `field "${k}" has the wrong type`)
  }
  return o as T
}

export const shapes = {
  start: { v: 'number', type: 'string', session: 'hex32', from: 'string', to: 'string', sig: 'hex64' },
  xcheck: { v: 'number', type: 'string', session: 'hex32', proposal: 'hex32', confirm: 'hex32', from: 'string', to: 'string', sig: 'hex64' },
  xcert: { v: 'number', type: 'string', session: 'hex32', xcheck: 'hex32', certificate: 'any', from: 'string', to: 'string', sig: 'hex64' },
  done: { v: 'number', type: 'string', session: 'hex32', provider: 'string', to: 'string', length: 'number', chunks: 'number', hash: 'hex32', sig: 'hex64' },
  inclusion: { v: 'number', type: 'string', session: 'hex32', from: 'string', to: 'string', entries: 'array', sig: 'hex64' },
  reveal: { v: 'number', type: 'string', session: 'hex32', provider: 'string', to: 'string', inclusion: 'hex32', seed: 'hex32', sig: 'hex64' },
  receipt: { v: 'number', type: 'string', session: 'hex32', from: 'string', to: 'string', commitment: 'hex32', cells: 'number', sig: 'hex64', result: 'array', r: 'hex32' }
} satisfies Record<string, Shape>

/** CHUNK (§5.4): 0x20, 3 zero bytes, u32 LE index, u32 LE offset, u32 LE count, count × u64 LE. */
export function encodeChunk(index: number, offset: number, values: BigUint64Array): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER + values.byteLength)
  const dv = new DataView(out.buffer)
  out[0] = MSG.chunk
  dv.setUint32(4, index, true)
  dv.setUint32(8, offset, true)
  dv.setUint32(12, values.length, true)
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), CHUNK_HEADER)
  return out
}

/**
 * A CHUNK frame with room for `count` values, and those values as a u64 view into it (offset 16 of
 * a fresh buffer: aligned). The provider fills and masks the view in place and sends the frame, so
 * a chunk is written once and never copied on its way to the transport.
 */
export function allocChunk(index: number, offset: number, count: number): { frame: Uint8Array; values: BigUint64Array } {
  const frame = new Uint8Array(CHUNK_HEADER + count * 8)
  const dv = new DataView(frame.buffer)
  frame[0] = MSG.chunk
  dv.setUint32(4, index, true)
  dv.setUint32(8, offset, true)
  dv.setUint32(12, count, true)
  return { frame, values: new BigUint64Array(frame.buffer, CHUNK_HEADER, count) }
}

export interface Chunk { index: number; offset: number; values: BigUint64Array }

export function decodeChunk(frame: Uint8Array, from: string): Chunk {
  if (frame.length < CHUNK_HEADER || frame[0] !== MSG.chunk || frame[1] !== 0 || frame[2] !== 0 || frame[3] !== 0) {
    fail('bad_vector', from, 'malformed CHUNK header')
  }
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const index = dv.getUint32(4, true)
  const offset = dv.getUint32(8, true)
  const count = dv.getUint32(12, true)
  if (frame.length !== CHUNK_HEADER + count * 8) fail('bad_vector', from, `CHUNK ${index} announces ${count} values but carries ${(frame.length - CHUNK_HEADER) / 8}`)
  const body = frame.subarray(CHUNK_HEADER)
  // BigUint64Array needs 8-byte alignment (PITFALLS: pooled buffers are often unaligned): copy once if so
  const values = body.byteOffset % 8 === 0
    ? new BigUint64Array(body.buffer, body.byteOffset, count)
    : new BigUint64Array(Uint8Array.from(body).buffer)
  return { index, offset, values }
}

export { toHex, fromHex }
