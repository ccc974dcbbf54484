// The bench's inputs, built outside every timed window: a synthetic query whose layout has exactly
// L data values, parsed from YAML by the same parser `mpc-agent query run` uses, and each
// provider's input vector (the same for the secure and the plaintext run).
import { endianness } from 'node:os'
import { parseQueryText, resolveQuery } from '../src/query/parse.ts'
import { layoutOf, slotBounds } from '../src/query/layout.ts'
import type { Query } from '../src/query/types.ts'

/** Every input value is in [0, MAX_VALUE]. */
export const MAX_VALUE = 999
/** The count slot's plausibility bound is this × N, so N·MAX_VALUE always passes check 6b. */
export const MAX_ROWS_PER_PROVIDER = MAX_VALUE + 1

/**
 * One group_by int_range over a column from 1 to L and one count: L cells × 1 slot. Participants
 * are peer IDs (resolveQuery passes them through and sorts the providers canonically).
 */
export function benchQuery(length: number, buyer: string, providers: string[], privacy = false): Query {
  const id = `bench-l${length}${privacy ? '-dp' : ''}`
  const text = [
    `id: ${id}`,
    `title: Synthetic bench query, ${length} cells x 1 count`,
    'dataset: bench',
    'group_by:',
    `  - { name: cell, kind: int_range, column: cell, min: 1, max: ${length} }`,
    'aggregates:',
    '  - { name: rows, kind: count }',
    `max_rows_per_provider: ${MAX_ROWS_PER_PROVIDER}`,
    'participants:',
    `  buyer: ${buyer}`,
    `  providers: [${providers.join(', ')}]`,
    'min_providers: 3',
    'timeouts: { negotiate_s: 30, compute_s: 120, confirm_s: 30 }',
    // the privacy row (bench/README.md): the agent plans the noise (privacy.md §4-5) from these
    ...(privacy ? ['privacy: { epsilon: 1.0, delta: 1.0e-9, unit: row }'] : [])
  ].join('\n')
  const q = resolveQuery(parseQueryText(text, `${id}.yaml`), buyer, (x) => x)
  const n = layoutOf(q).length
  if (n !== length) throw new Error(`bench query has ${n} values, expected ${length}`)
  const bound = slotBounds(q, providers.length)[0]
  if (!bound || (!privacy && bound.min > 0n) || bound.max < BigInt(MAX_VALUE * providers.length)) throw new Error('bench vectors would fail the plausibility check')
  return q
}

/** A deterministic vector of small values (< 1000): only the low 32-bit word of each u64 is written. */
export function benchVector(length: number, seed: number): BigUint64Array {
  const v = new BigUint64Array(length)
  const at = (i: number): number => ((Math.imul(i, 0x9e3779b1) >>> 0) + seed * 7919) % (MAX_VALUE + 1)
  if (endianness() === 'LE') {
    const words = new Uint32Array(v.buffer, v.byteOffset, length * 2)
    for (let i = 0; i < length; i++) words[2 * i] = at(i)
  } else {
    for (let i = 0; i < length; i++) v[i] = BigInt(at(i))
  }
  return v
}
