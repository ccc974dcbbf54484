// Privacy policy checks (protocols/privacy.md §9): privacy_required, privacy_unit, privacy_epsilon, and t.
import { describe, expect, it } from 'vitest'
import { assumedDishonest, evaluatePrivacy, type PolicyPrivacy, type QueryPrivacy } from '../../src/privacy/policy.ts'

const policy: PolicyPrivacy = {
  required: true,
  maxEpsilonPerQuery: 1,
  units: { trips: { kind: 'column', column: 'vehicle_id', maxCells: 24, maxRowsPerCell: 1 }, zones: { kind: 'row' } }
}
const query: QueryPrivacy = { epsilon: 1, delta: 1e-9, unit: { kind: 'column', column: 'vehicle_id', maxCells: 24, maxRowsPerCell: 1 } }

describe('privacy policy', () => {
  it('accepts a matching query and refuses a missing section only when required', () => {
    expect(evaluatePrivacy(query, policy, 'trips')).toEqual([])
    expect(evaluatePrivacy(undefined, policy, 'trips').map((r) => r.code)).toEqual(['privacy_required'])
    expect(evaluatePrivacy(undefined, { ...policy, required: false }, 'trips')).toEqual([])
    expect(evaluatePrivacy(undefined, undefined, 'trips')).toEqual([])
  })
  it('refuses a unit that differs from the dataset\'s (any field) and an epsilon over the cap', () => {
    for (const unit of [
      { kind: 'row' } as const,
      { kind: 'column', column: 'driver_id', maxCells: 24, maxRowsPerCell: 1 } as const,
      { kind: 'column', column: 'vehicle_id', maxCells: 48, maxRowsPerCell: 1 } as const,
      { kind: 'column', column: 'vehicle_id', maxCells: 24, maxRowsPerCell: 2 } as const
    ]) {
      expect(evaluatePrivacy({ ...query, unit }, policy, 'trips').map((r) => r.code)).toEqual(['privacy_unit'])
    }
    expect(evaluatePrivacy({ ...query, unit: { kind: 'row' } }, policy, 'zones')).toEqual([])
    expect(evaluatePrivacy(query, policy, 'unknown').map((r) => r.code)).toEqual(['privacy_unit'])
    expect(evaluatePrivacy({ ...query, epsilon: 1.5 }, policy, 'trips').map((r) => r.code)).toEqual(['privacy_epsilon'])
  })
  it('a query\'s delta above the budget\'s is privacy_epsilon: max_epsilon_per_query means nothing at an unbounded delta', () => {
    const capped = { ...policy, maxDeltaPerQuery: 1e-9 }
    expect(evaluatePrivacy({ ...query, delta: 1e-9 }, capped, 'trips')).toEqual([])
    const r = evaluatePrivacy({ ...query, delta: 1e-4 }, capped, 'trips')
    expect(r.map((x) => x.code)).toEqual(['privacy_epsilon'])
    expect(r[0]?.message).toMatch(/delta 0.0001 exceeds this provider's budget delta 1e-9/)
  })
  it('t defaults to N − 2 and is clamped to [0, N − 1]', () => {
    expect(assumedDishonest(policy, 5)).toBe(3)
    expect(assumedDishonest({ ...policy, assumeDishonestProviders: 1 }, 5)).toBe(1)
    expect(assumedDishonest({ ...policy, assumeDishonestProviders: 9 }, 5)).toBe(4)
  })
})
