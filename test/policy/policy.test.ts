// Each policy rule rejects with its own reason code; a conforming query is accepted.
import { describe, expect, it, beforeAll } from 'vitest'
import { parsePolicyText, PolicyError, type Policy } from '../../src/policy/policy.ts'
import { evaluatePolicy, type PolicyContext, type PolicyHistory } from '../../src/policy/evaluate.ts'
import { validateQuery, templateDigest } from '../../src/query/validate.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import type { Query } from '../../src/query/types.ts'
import { makeParties, makeParty, type Party } from '../helpers/parties.ts'

let buyer: Party, other: Party, ps: Party[], names: Map<string, string>
const resolve = (x: string): string | undefined => names.get(x)

const POLICY = `approval: auto
buyers: [city]
datasets:
  trips:
    filter_columns: [ts, zone, fare]
    group_by_columns: [ts, zone, license]
    aggregate_columns: [fare]
    deny_columns: [license]
    required_clip: { fare: [0, 500] }
min_providers: 3
trusted_co_providers: { peers: [p2, p3], min: 2 }
max_cells: 1000
max_runs_per_buyer_per_day: 2
differencing_window_s: 3600
allowed_outputs: [buyer]
`

function query(over: Partial<Record<string, unknown>> = {}, providers = ps): Query {
  return validateQuery({
    version: 1, id: 'q', title: 't', dataset: 'trips', timezone: 'UTC',
    filter: { op: 'cmp', cmp: '>', ref: { column: 'fare' }, value: 0 },
    group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 10 } }, { name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }],
    aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 100, clip: [0, 100], nulls: 'skip' }],
    out_of_domain: 'drop', max_rows_per_provider: 1000,
    participants: { buyer: buyer.peerId, providers: providers.map((p) => p.peerId).sort(comparePeers) },
    min_providers: 3, output: [buyer.peerId], timeouts: { negotiate_s: 5, compute_s: 5, confirm_s: 5 },
    ...over
  })
}

const noHistory: PolicyHistory = { certifiedRunsByBuyerSince: () => 0, sameTemplateSince: () => [] }

function ctx(q: Query, over: Partial<PolicyContext> = {}): PolicyContext {
  return {
    query: q, buyer: buyer.peerId, self: ps[0]?.peerId as string,
    configuredPeers: new Map([[buyer.peerId, 'buyer'], ...ps.map((p) => [p.peerId, 'provider'] as [string, 'provider']), [other.peerId, 'provider']]),
    history: noHistory, now: Date.now(), ...over
  }
}

let policy: Policy
beforeAll(async () => {
  const parties = await makeParties(3)
  buyer = parties.buyer
  ps = parties.providers
  other = await makeParty()
  names = new Map([['city', buyer.peerId], ['p1', ps[0]?.peerId as string], ['p2', ps[1]?.peerId as string], ['p3', ps[2]?.peerId as string], ['x', other.peerId]])
  policy = parsePolicyText(POLICY, 'policy.yaml', resolve)
})

const codes = (q: Query, c: Partial<PolicyContext> = {}, p?: Policy): string[] => evaluatePolicy(p ?? policy, ctx(q, c)).reasons.map((r) => r.code)

describe('policy', () => {
  it('accepts a conforming query', () => {
    expect(evaluatePolicy(policy, ctx(query()))).toEqual({ accept: true, reasons: [] })
  })

  it('buyer_not_allowed', () => expect(codes(query(), { buyer: other.peerId })).toContain('buyer_not_allowed'))
  it('buyer_mismatch', () => expect(codes(query(), { buyer: ps[1]?.peerId })).toContain('buyer_mismatch'))
  it('not_a_participant', () => expect(codes(query(), { self: other.peerId })).toContain('not_a_participant'))
  it('dataset_not_exposed', () => expect(codes(query({ dataset: 'payroll' }))).toEqual(['dataset_not_exposed']))
  it('column_not_allowed_filter', () => expect(codes(query({ filter: { op: 'is_null', ref: { column: 'driver' }, negated: false } }))).toEqual(['column_not_allowed_filter']))
  it('column_not_allowed_group_by', () => expect(codes(query({ group_by: [{ name: 'f', domain: { kind: 'bins', ref: { column: 'fare' }, edges: [0, 10], closed: 'left' } }] }))).toEqual(['column_not_allowed_group_by']))
  it('column_not_allowed_aggregate', () => expect(codes(query({ aggregates: [{ name: 'd', kind: 'count_distinct', column: 'driver' }] }))).toEqual(['column_not_allowed_aggregate']))
  it('column_denied', () => expect(codes(query({ group_by: [{ name: 'l', domain: { kind: 'categories', ref: { column: 'license' }, values: ['HV1'] } }] }))).toEqual(['column_denied']))
  it('clip_required', () => expect(codes(query({ aggregates: [{ name: 'fare', kind: 'mean', column: 'fare', scale: 1, clip: [0, 1e6], nulls: 'skip' }] }))).toEqual(['clip_required']))
  it('too_few_providers', () => {
    const strict = { ...policy, min_providers: 4 }
    expect(codes(query(), {}, strict)).toEqual(['too_few_providers'])
  })
  it('unknown_co_provider', () => {
    const q = query({}, [ps[0] as Party, ps[1] as Party, other])
    expect(codes(q, { configuredPeers: new Map([[buyer.peerId, 'buyer'], [ps[1]?.peerId as string, 'provider']]) })).toContain('unknown_co_provider')
  })
  it('untrusted_co_providers', () => expect(codes(query({}, [ps[0] as Party, ps[1] as Party, other]))).toEqual(['untrusted_co_providers']))
  it('too_many_cells', () => expect(codes(query({ group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 100 } }, { name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }] }))).toEqual(['too_many_cells']))
  it('rate_limited (certified runs count, not successes)', () => expect(codes(query(), { history: { ...noHistory, certifiedRunsByBuyerSince: () => 2 } })).toEqual(['rate_limited']))
  it('differencing: the same template over a different provider set within the window', () => {
    const q = query()
    const t = toHex(templateDigest(q))
    const history: PolicyHistory = { ...noHistory, sameTemplateSince: (x) => (x === t ? [{ providers: [ps[0]?.peerId as string, ps[1]?.peerId as string, other.peerId] }] : []) }
    expect(codes(q, { history })).toEqual(['differencing'])
    const same: PolicyHistory = { ...noHistory, sameTemplateSince: () => [{ providers: q.participants.providers }] }
    expect(codes(q, { history: same })).toEqual([])
  })
  it('output_not_allowed', () => expect(codes(query({ output: [buyer.peerId, ps[1]?.peerId] }))).toEqual(['output_not_allowed']))
  it('collects every failing rule at once', () => {
    expect(codes(query({ dataset: 'x' }), { buyer: other.peerId, history: { ...noHistory, certifiedRunsByBuyerSince: () => 9 } }).length).toBeGreaterThanOrEqual(3)
  })

  it.each([
    ['min_providers 2', POLICY.replace('min_providers: 3', 'min_providers: 2'), /at least 3/],
    ['unknown key', POLICY + 'bogus: 1\n', /unknown key "bogus"/],
    ['unknown peer name', POLICY.replace('[p2, p3]', '[p2, nobody]'), /"nobody"/],
    ['bad approval', POLICY.replace('approval: auto', 'approval: sometimes'), /auto or manual/]
  ])('rejects a policy file with %s', (_n, text, re) => {
    expect(() => parsePolicyText(text, 'policy.yaml', resolve)).toThrow(PolicyError)
    expect(() => parsePolicyText(text, 'policy.yaml', resolve)).toThrow(re)
  })
})
