import { describe, it, expect } from 'vitest'
import { decodeResult, flagImplausible, resultToCsv, topCells } from '../../src/query/result.ts'
import type { Query } from '../../src/query/types.ts'

const q = {
  group_by: [
    { name: 'zone', domain: { kind: 'int_range', ref: { column: 'z' }, min: 1, max: 2 } },
    { name: 'dow', domain: { kind: 'categories', ref: { column: 'd' }, values: ['a', 'b', 'c'] } }
  ],
  aggregates: [
    { name: 'n', kind: 'count' },
    { name: 'fare', kind: 'mean', column: 'f', scale: 100, clip: [0, 500] }
  ]
} as unknown as Query

describe('decodeResult', () => {
  it('walks cells row-major (first dimension slowest) and decodes means and scales', () => {
    // 6 cells × 3 slots (count, mean_sum, mean_count)
    const vals: bigint[] = []
    for (let c = 0; c < 6; c++) vals.push(BigInt(c), BigInt(c * 250), c === 0 ? 0n : 2n)
    const t = decodeResult(q, vals)
    expect(t.cells.map((c) => c.key.join('/'))).toEqual(['1/a', '1/b', '1/c', '2/a', '2/b', '2/c'])
    expect(t.cells[0]?.values).toEqual({ n: 0, fare: null })
    expect(t.cells[5]?.values).toEqual({ n: 5, fare: 6.25 })
    expect(resultToCsv(t).split('\n')[0]).toBe('zone,dow,n,fare')
    expect(topCells(t, 1)).toEqual([{ label: '2 × c', value: 5, values: { n: 5, fare: 6.25 } }])
  })

  it('check 6b flags: a value index names its cell and aggregate (a mean by either slot); CSV gains an implausible column only then', () => {
    const vals: bigint[] = Array.from({ length: 18 }, () => 1n)
    const t = flagImplausible(q, decodeResult(q, vals), [4, 5, 15])
    expect(t.cells.map((c) => c.implausible ?? [])).toEqual([[], ['fare'], [], [], [], ['n']])
    const csv = resultToCsv(t).split('\n')
    expect(csv[0]).toBe('zone,dow,n,fare,implausible')
    expect(csv[2]).toBe('1,b,1,0.01,fare')
    expect(csv[1]).toBe('1,a,1,0.01,')
    expect(resultToCsv(decodeResult(q, vals)).split('\n')[0]).toBe('zone,dow,n,fare')
  })

  it('rejects a vector of the wrong length', () => {
    expect(() => decodeResult(q, [1n])).toThrow(/expected 18 values/)
  })
})
