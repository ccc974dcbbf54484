// accumulate / subtract on 32-bit limbs must be exactly Z_2^64 addition and subtraction, at any
// offset, for values around every carry and borrow boundary.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { accumulate, subtract } from '../../src/protocol/masks.ts'

const M = 2n ** 64n
const edge = fc.constantFrom(0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n - 1n, 2n ** 63n, M - 2n, M - 1n)
const u64 = fc.oneof(edge, fc.bigInt({ min: 0n, max: M - 1n }))

describe('Z_2^64 arithmetic on limbs', () => {
  it('property: equals BigInt arithmetic mod 2^64, at an offset', () => {
    fc.assert(fc.property(fc.array(fc.tuple(u64, u64), { minLength: 1, maxLength: 40 }), fc.nat(5), (pairs, offset) => {
      const acc = new BigUint64Array(offset + pairs.length + 2).fill(7n)
      const src = BigUint64Array.from(pairs.map(([, b]) => b))
      pairs.forEach(([a], i) => { acc[offset + i] = a })
      const added = acc.slice()
      accumulate(added, offset, src)
      const subbed = acc.slice()
      subtract(subbed, offset, src)
      pairs.forEach(([a, b], i) => {
        expect(added[offset + i]).toBe((a + b) % M)
        expect(subbed[offset + i]).toBe(((a - b) % M + M) % M)
      })
      // nothing outside [offset, offset + n) is touched
      for (const arr of [added, subbed]) {
        for (let i = 0; i < offset; i++) expect(arr[i]).toBe(7n)
        expect(arr[offset + pairs.length]).toBe(7n)
      }
    }), { numRuns: 2000 })
  })

  it('refuses to write past the end', () => {
    expect(() => accumulate(new BigUint64Array(4), 2, new BigUint64Array(3))).toThrow(RangeError)
    expect(() => subtract(new BigUint64Array(4), 2, new BigUint64Array(3))).toThrow(RangeError)
  })
})
