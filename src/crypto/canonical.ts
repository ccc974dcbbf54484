// RFC 8785 (JSON Canonicalization Scheme) for the JSON subset the protocols use.
// protocols/negotiation.md §2: numbers must be finite; integers beyond 2^53 are carried as strings,
// so ECMAScript number serialisation (RFC 8785 §3.2.2.3) is exactly JSON.stringify's.
import { utf8 } from './bytes.ts'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export class CanonicalizationError extends Error {
  override name = 'CanonicalizationError'
}

/**
 * Deepest nesting canonicalised. Far above any message (WIRE_JSON_LIMITS.depth is 96): the recursion
 * below is bounded by it, so a value nobody bounded before cannot exhaust the stack.
 */
export const MAX_CANONICAL_DEPTH = 256

export function canonicalize(value: unknown): string {
  return ser(value, '$', 0)
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value))
}

function ser(v: unknown, path: string, depth: number): string {
  if (v === null) return 'null'
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalizationError(`${path}: non-finite number`)
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
        throw new CanonicalizationError(`${path}: integer beyond 2^53 must be a string`)
      }
      return JSON.stringify(v) // RFC 8785 §3.2.2.3 = ECMAScript Number::toString
    case 'string':
      return JSON.stringify(v) // RFC 8785 §3.2.2.2 escaping matches JSON.stringify
    case 'object': {
      if (depth >= MAX_CANONICAL_DEPTH) throw new CanonicalizationError(`${path.slice(0, 80)}…: nested deeper than ${MAX_CANONICAL_DEPTH}`)
      if (Array.isArray(v)) return '[' + v.map((x, i) => ser(x, `${path}[${i}]`, depth + 1)).join(',') + ']'
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalizationError(`${path}: only plain objects can be canonicalised`)
      }
      // RFC 8785 §3.2.3: sort by UTF-16 code units, which is JS's default string order.
      const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + ser((v as Record<string, unknown>)[k], `${path}.${k}`, depth + 1)).join(',') + '}'
    }
    default:
      throw new CanonicalizationError(`${path}: ${typeof v} is not JSON`)
  }
}
