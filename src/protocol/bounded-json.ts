// The one place a JSON message from the wire is parsed (negotiation.md §2.2, masked-sum.md §5).
// Every decoder (negotiation messages, masked-sum messages, ABORT, the stream router's peek) goes
// through parseBoundedJson, so nothing downstream — signature digests, audit, logs, UI — ever sees
// a value deeper, wider or longer than WIRE_JSON_LIMITS. Pure, synchronous, and never recursive:
// nesting is measured on the bytes before JSON.parse builds anything, then one iterative walk
// checks the parsed value.
import { fromUtf8 } from '../crypto/bytes.ts'

export interface JsonLimits {
  /** Deepest nesting of arrays and objects (the top-level value is depth 1). */
  depth: number
  /** Most keys in one object. */
  keys: number
  /** Most elements in one array. */
  array: number
  /** Longest string, key or value, in UTF-16 code units. */
  string: number
  /** Most values in the whole document (every object, array, string, number, boolean, null). */
  nodes: number
}

/**
 * Bounds for every JSON message of both protocols. Each is the largest a valid message needs, with
 * margin, and no more:
 * - depth 96: a filter is ≤ 32 levels and each `and`/`or` level is two JSON levels (object, args
 *   array); a certificate wraps the query in 5 levels; an ABORT's evidence wraps a certificate in a
 *   few more (≈ 80 at most).
 * - keys 256: a query has 14 fields; evidence keyed by provider has ≤ 100.
 * - array 16 384: `categories` and `bins` allow 10 000 values (10 001 edges).
 * - string 4096: the longest string field is a filter literal (1000) or an abort detail (500).
 * - nodes 262 144: a 1 MiB frame of tiny values; the walk stays linear and short.
 */
export const WIRE_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ depth: 96, keys: 256, array: 16_384, string: 4096, nodes: 262_144 })

export class JsonBoundsError extends Error {
  override name = 'JsonBoundsError'
}

/**
 * Nesting depth of a JSON text, from its UTF-8 bytes without parsing (brackets inside strings do
 * not count). Stops as soon as `max` is exceeded. Bytes of multi-byte characters are ≥ 0x80, so
 * they can never be taken for a bracket, quote or backslash.
 */
export function jsonDepthExceeds(bytes: Uint8Array, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number
    if (inString) {
      if (b === 0x5c) i++ // backslash: skip the escaped byte
      else if (b === 0x22) inString = false
    } else if (b === 0x22) inString = true
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true
    } else if (b === 0x5d || b === 0x7d) depth--
  }
  return false
}

/** Check a parsed value against `limits`, iteratively; throws JsonBoundsError naming the first excess. */
export function checkJsonBounds(value: unknown, limits: Readonly<JsonLimits> = WIRE_JSON_LIMITS): void {
  const stack: Array<[unknown, number]> = [[value, 1]]
  let nodes = 0
  while (stack.length) {
    const [v, d] = stack.pop() as [unknown, number]
    if (++nodes > limits.nodes) throw new JsonBoundsError(`more than ${limits.nodes} values`)
    if (typeof v === 'string') {
      if (v.length > limits.string) throw new JsonBoundsError(`a string longer than ${limits.string} characters`)
      continue
    }
    if (typeof v !== 'object' || v === null) continue
    if (d > limits.depth) throw new JsonBoundsError(`nesting deeper than ${limits.depth}`)
    if (Array.isArray(v)) {
      if (v.length > limits.array) throw new JsonBoundsError(`an array of more than ${limits.array} elements`)
      for (const x of v) stack.push([x, d + 1])
      continue
    }
    const keys = Object.keys(v)
    if (keys.length > limits.keys) throw new JsonBoundsError(`an object with more than ${limits.keys} keys`)
    for (const k of keys) {
      if (k.length > limits.string) throw new JsonBoundsError(`a key longer than ${limits.string} characters`)
      // no message has this key; copied by assignment anywhere downstream it would set a prototype
      if (k === '__proto__') throw new JsonBoundsError('a "__proto__" key')
      stack.push([(v as Record<string, unknown>)[k], d + 1])
    }
  }
}

/**
 * Parse a JSON text received from a peer: strict UTF-8, nesting checked on the bytes first (a
 * 400 000-deep frame is refused in one linear scan, before JSON.parse allocates it), then every
 * other bound. Throws JsonBoundsError; never anything else.
 */
export function parseBoundedJson(bytes: Uint8Array, limits: Readonly<JsonLimits> = WIRE_JSON_LIMITS): unknown {
  if (jsonDepthExceeds(bytes, limits.depth)) throw new JsonBoundsError(`nesting deeper than ${limits.depth}`)
  let v: unknown
  try {
    v = JSON.parse(fromUtf8(bytes))
  } catch {
    throw new JsonBoundsError('not UTF-8 JSON')
  }
  checkJsonBounds(v, limits)
  return v
}

export type JsonObject = Record<string, unknown>

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * A version-1 message of one of the small side protocols (directory, reach): a bounded JSON object
 * with `v: 1`. Every failure becomes `fail(reason)`, the protocol's own error.
 */
export function parseV1Object(bytes: Uint8Array, limits: Readonly<JsonLimits>, fail: (reason: string) => Error): JsonObject {
  let v: unknown
  try {
    v = parseBoundedJson(bytes, limits)
  } catch (e) {
    throw fail(e instanceof JsonBoundsError ? e.message : 'not JSON')
  }
  if (!isJsonObject(v)) throw fail('expected a JSON object')
  if (v.v !== 1) throw fail(`unsupported message version ${safeText(JSON.stringify(v.v) ?? 'none', 20)}`)
  return v
}

/** Refuse any key of `m` outside `keys`, naming it (safely) in `fail`'s reason. */
export function onlyKeys(m: JsonObject, keys: readonly string[], fail: (reason: string) => Error): void {
  for (const k of Object.keys(m)) if (!keys.includes(k)) throw fail(`unknown key "${safeText(k, 40)}"${typeof m.type === 'string' ? ` in ${safeText(m.type, 20)}` : ''}`)
}

/** Lowercase hex of exactly `bytes` bytes. */
export function isHexOf(v: unknown, bytes: number): v is string {
  return typeof v === 'string' && v.length === bytes * 2 && /^[0-9a-f]*$/.test(v)
}

/** Control, bidi-override and line-separator characters: shown from a peer, they could forge log lines. */
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** A peer's free text made safe for one log line or terminal: unsafe characters become '?', length capped. */
export function safeText(s: string, max = 500): string {
  return s.slice(0, max).replace(UNSAFE_TEXT, '?')
}
