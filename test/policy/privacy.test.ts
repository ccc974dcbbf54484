// The query's privacy section and the provider's privacy policy (protocols/privacy.md §5, §9): each rule refuses
// with its own code; the signed noise plan is recomputed by every provider and refused (privacy_noise) if weaker.
import { describe, expect, it, beforeAll } from 'vitest'
import { parsePolicyText, PolicyError, type Policy } from '../../src/policy/policy.ts'
import { evaluatePolicy, type PolicyContext } from '../../src/policy/evaluate.ts'
import { parseQueryText, resolveQuery } from '../../src/query/parse.ts'
import { validateQuery } from '../../src/query/validate.ts'
import type { Query } from '../../src/query/types.ts'
import { slotBounds, totalBounds } from '../../src/query/layout.ts'
import { makeParties, type Party } from '../helpers/parties.ts'

let buyer: Party, ps: Party[], names: Map<string, string>
const resolve = (x: string): string | undefined => names.get(x)

const POLICY = (extra: string): string => `buyers: [city]
datasets:
  trips:
    filter_columns: [fare]
    group_by_columns: [ts, zone]
    aggregate_columns: [fare]
    max_rows_floor: 1000
differencing_window_s: 0
${extra}`
const PRIV = `privacy:
  required: true
  max_epsilon_per_query: 1.0
  budget: { epsilon: 3.0, delta: 1.0e-6, window_days: 30 }
  unit: { trips: { column: vehicle_id, max_cells: 24, max_rows_per_cell: 2 } }
`
const QUERY = (privacy: string): string => `id: q
title: t
dataset: trips
group_by: [{ name: h, kind: hour_of_day, column: ts }]
aggregates: [{ name: n, kind: count }, { name: fare, kind: sum, column: fare, scale: 100, clip: [0, 100] }]
max_rows_per_provider: 1000
participants: { buyer: city, providers: [p1, p2, p3] }
${privacy}`
const QPRIV = 'privacy: { epsilon: 1.0, delta: 1.0e-9, unit: { column: vehicle_id, max_cells: 24, max_rows_per_cell: 2 }, suppress_below: 5 }\n'

const q = (text: string): Query => resolveQuery(parseQueryText(text, 'q.yaml'), buyer.peerId, resolve)
function ctx(query: Query): PolicyContext {
  return {
    query, buyer: buyer.peerId, self: ps[0]?.peerId as string,
    configuredPeers: new Map([[buyer.peerId, 'buyer'], ...ps.map((p) => [p.peerId, 'provider'] as [string, 'provider'])]),
    history: { certifiedRunsByBuyerSince: () => 0 }, now: Date.now()
  }
}
const codes = (p: Policy, query: Query): string[] => evaluatePolicy(p, ctx(query)).reasons.map((r) => r.code)

beforeAll(async () => {
  const parties = await makeParties(3)
  buyer = parties.buyer
  ps = parties.providers
  names = new Map([['city', buyer.peerId], ['p1', ps[0]?.peerId as string], ['p2', ps[1]?.peerId as string], ['p3', ps[2]?.peerId as string]])
})

describe('query privacy section', () => {
  it('is resolved with the noise plan signed in the query, and round-trips through validateQuery', () => {
    const query = q(QUERY(QPRIV))
    expect(query.privacy?.noise.mechanism).toBe('discrete_gaussian')
    expect(query.privacy?.noise.dishonest).toBe(1) // N − 2
    expect(query.privacy?.noise.sigmas).toHaveLength(2)
    expect(query.privacy?.suppress_below).toBe(5)
    expect(validateQuery(JSON.parse(JSON.stringify(query)))).toEqual(query)
    // noisy bounds are wider than the exact ones by the tail bound
    const exact = slotBounds(query, 3)
    const noisy = totalBounds(query, 3)
    expect(noisy[0]?.min).toBeLessThan(0n)
    expect((noisy[1]?.max ?? 0n) > (exact[1]?.max ?? 0n)).toBe(true)
  })
  it('refuses bad sections and a hand-written noise plan', () => {
    expect(() => q(QUERY('privacy: { epsilon: 0, delta: 1.0e-9, unit: row }\n'))).toThrow(/privacy.epsilon/)
    expect(() => q(QUERY('privacy: { epsilon: 1, delta: 0.5, unit: row }\n'))).toThrow(/privacy.delta/)
    expect(() => q(QUERY('privacy: { epsilon: 1, delta: 1.0e-9, unit: { column: v } }\n'))).toThrow(/max_cells/)
    expect(() => q(QUERY('privacy: { epsilon: 1, delta: 1.0e-9, unit: row, noise: { mechanism: discrete_gaussian, dishonest: 0, sigmas: [1, 1] } }\n'))).toThrow(/noise/)
    const query = q(QUERY(QPRIV))
    const { noise: _n, ...noNoise } = query.privacy as NonNullable<Query['privacy']>
    expect(() => validateQuery(JSON.parse(JSON.stringify({ ...query, privacy: noNoise })))).toThrow(/noise/)
  })
})

describe('provider privacy policy', () => {
  it('parses and accepts a conforming query', () => {
    const p = parsePolicyText(POLICY(PRIV), 'policy.yaml', resolve)
    expect(p.privacy?.budget).toEqual({ epsilon: 3, delta: 1e-6, window_days: 30 })
    expect(codes(p, q(QUERY(QPRIV)))).toEqual([])
    expect(() => parsePolicyText(POLICY('privacy: { required: true }\n'), 'policy.yaml', resolve)).toThrow(PolicyError)
  })
  it('privacy_required, privacy_unit, privacy_epsilon', () => {
    const p = parsePolicyText(POLICY(PRIV), 'policy.yaml', resolve)
    expect(codes(p, q(QUERY('')))).toEqual(['privacy_required'])
    expect(codes(p, q(QUERY('privacy: { epsilon: 1.0, delta: 1.0e-9, unit: row }\n')))).toEqual(['privacy_unit'])
    expect(codes(p, q(QUERY('privacy: { epsilon: 2.0, delta: 1.0e-9, unit: { column: vehicle_id, max_cells: 24, max_rows_per_cell: 2 } }\n')))).toEqual(['privacy_epsilon'])
    const notRequired = parsePolicyText(POLICY(PRIV.replace('required: true', 'required: false')), 'policy.yaml', resolve)
    expect(codes(notRequired, q(QUERY('')))).toEqual([])
  })
  it('privacy_noise: a certificate whose noise is smaller than this provider requires is refused', () => {
    const p = parsePolicyText(POLICY(PRIV), 'policy.yaml', resolve)
    const good = q(QUERY(QPRIV))
    const sig = good.privacy?.noise.sigmas as number[]
    const weaker = validateQuery(JSON.parse(JSON.stringify({ ...good, privacy: { ...good.privacy, noise: { ...good.privacy?.noise, sigmas: sig.map((s) => Math.max(1, Math.floor(s / 2))) } } })))
    expect(codes(p, weaker)).toEqual(['privacy_noise'])
    // a provider assuming more colluders (t = 2: only its own noise counts) refuses the buyer's t = 1 plan
    const strict = parsePolicyText(POLICY(PRIV + '  assume_dishonest_providers: 2\n'), 'policy.yaml', resolve)
    expect(codes(strict, good)).toEqual(['privacy_noise'])
    // more noise than needed is fine
    const stronger = validateQuery(JSON.parse(JSON.stringify({ ...good, privacy: { ...good.privacy, noise: { ...good.privacy?.noise, sigmas: sig.map((s) => s * 2) } } })))
    expect(codes(p, stronger)).toEqual([])
  })
})
