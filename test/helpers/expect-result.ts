// An assertion shared by the e2e files (kept out of data-cluster.ts, which scripts/soak.ts runs outside vitest).
import { expect } from 'vitest'
import { expected, readResult, type DataCluster } from './data-cluster.ts'

/** The buyer's result at `out` equals the plaintext totals over every provider's rows (`expected`), cell by cell. */
export function expectPlaintextTotals(dc: DataCluster, out: string): void {
  const doc = readResult(out)
  expect(doc.cells).toHaveLength(5 * 24)
  const want = expected(dc.data)
  let nonEmpty = 0
  for (const c of doc.cells) {
    const e = want.get(c.key.join('|')) ?? { pickups: 0, fare: 0 }
    expect(c.values.pickups, c.key.join('|')).toBe(e.pickups)
    expect(c.values.fare).toBeCloseTo(e.fare, 9)
    if (e.pickups) nonEmpty++
  }
  expect(nonEmpty).toBeGreaterThan(50)
}
