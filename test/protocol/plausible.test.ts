// Check 6b's fast path (u32 halves as doubles) must decide exactly as the plain BigInt comparison,
// for values at, just inside and just outside every bound, signed and unsigned, near ±2^53 and 2^63,
// and flag exactly the values outside (6b flags, it never aborts: masked-sum.md §8).
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { implausibleValues } from '../../src/protocol/masked-sum-buyer.ts'
import type { SessionParams } from '../../src/protocol/session.ts'
import type { SlotBound } from '../../src/query/layout.ts'

function reference(bounds: SlotBound[], signed: boolean[], sum: BigUint64Array): boolean {
  for (let i = 0; i < sum.length; i++) {
    const s = i % bounds.length
    const v = signed[s] ? BigInt.asIntN(64, sum[i] as bigint) : (sum[i] as bigint)
    const b = bounds[s] as SlotBound
    if (v < b.min || v > b.max) return false
  }
  return true
}

function fast(bounds: SlotBound[], signed: boolean[], sum: BigUint64Array): boolean {
  const params = { bounds, signed, length: sum.length } as unknown as SessionParams
  const flagged = implausibleValues(params, sum)
  // the flags name exactly the failing values
  expect(flagged).toEqual([...sum.keys()].filter((i) => !reference([bounds[i % bounds.length] as SlotBound], [signed[i % bounds.length] as boolean], sum.subarray(i, i + 1))))
  return flagged.length === 0
}

const edges = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 2n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n]
const bound = fc.oneof(fc.constantFrom(...edges, ...edges.map((e) => -e)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }))

describe('check 6b: plausibility bounds', () => {
  it('property: decides exactly as BigInt comparisons, around every bound', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(bound, bound, fc.boolean()), { minLength: 1, maxLength: 3 }),
      fc.array(fc.bigInt({ min: -3n, max: 3n }), { minLength: 1, maxLength: 12 }),
      (slots, deltas) => {
        const bounds = slots.map(([a, b, sg]) => {
          const [min, max] = a <= b ? [a, b] : [b, a]
          return sg ? { min, max } : { min: min < 0n ? 0n : min, max: max < 0n ? 0n : max }
        })
        const signed = slots.map(([, , sg]) => sg)
        // values at a bound plus a small delta: the only places a rounding slip could show
        const sum = BigUint64Array.from(deltas.map((d, i) => {
          const b = bounds[i % bounds.length] as SlotBound
          return BigInt.asUintN(64, (i % 2 === 0 ? b.min : b.max) + d)
        }))
        expect(fast(bounds, signed, sum)).toBe(reference(bounds, signed, sum))
      }
    ), { numRuns: 3000 })
  })

  it('a million in-bounds cells pass; one out-of-bounds cell anywhere is found', () => {
    const sum = new BigUint64Array(1_000_000).fill(7n)
    const bounds = [{ min: 0n, max: 3000n }]
    expect(fast(bounds, [false], sum)).toBe(true)
    sum[765_432] = 3001n
    expect(fast(bounds, [false], sum)).toBe(false)
    expect(implausibleValues({ bounds, signed: [false], length: sum.length } as unknown as SessionParams, sum)).toEqual([765_432])
    sum[765_432] = BigInt.asUintN(64, -1n) // −1 as an unsigned slot is 2^64 − 1: far out
    expect(fast(bounds, [false], sum)).toBe(false)
    expect(fast([{ min: -5n, max: 5n }], [true], sum.fill(0n).fill(BigInt.asUintN(64, -5n), 10, 11))).toBe(true)
  })
})
