// Each policy rule rejects with its own reason code; a conforming query is accepted.
import { describe, expect, it, beforeAll } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_MAX_ROWS_FLOOR, loadPolicy, parsePolicyText, PolicyError, type Policy } from '../../src/policy/policy.ts'
import { describeProposal, evaluatePolicy, type PolicyContext, type PolicyHistory } from '../../src/policy/evaluate.ts'
import { validateQuery } from '../../src/query/validate.ts'
import type { Pin } from '../../src/policy/differencing.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
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
    max_rows_floor: 1000
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
    aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 100, clip: [0, 100] }],
    max_rows_per_provider: 1000,
    participants: { buyer: buyer.peerId, providers: providers.map((p) => p.peerId).sort(comparePeers) },
    min_providers: 3, output: [buyer.peerId], timeouts: { negotiate_s: 5, compute_s: 5, confirm_s: 5 },
    ...over
  })
}

const noHistory: PolicyHistory = { certifiedRunsByBuyerSince: () => 0 }

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

  it('buyer_not_allowed', () => expect(codes(query(), {}, { ...policy, buyers: [other.peerId] })).toEqual(['buyer_not_allowed']))
  it('buyer_mismatch', () => expect(codes(query(), { buyer: other.peerId }, { ...policy, buyers: [buyer.peerId, other.peerId] })).toEqual(['buyer_mismatch']))
  it('not_a_participant', () => expect(codes(query(), { self: other.peerId })).toEqual(['not_a_participant']))
  it('dataset_not_exposed', () => expect(codes(query({ dataset: 'payroll' }))).toEqual(['dataset_not_exposed']))
  it('dataset_not_exposed for names an object inherits (constructor, toString, __proto__): never a policy of its own', () => {
    for (const dataset of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) expect(codes(query({ dataset })), dataset).toContain('dataset_not_exposed')
  })
  it('column_not_allowed_filter', () => expect(codes(query({ filter: { op: 'is_null', ref: { column: 'driver' }, negated: false } }))).toEqual(['column_not_allowed_filter']))
  it('column_not_allowed_group_by', () => expect(codes(query({ group_by: [{ name: 'f', domain: { kind: 'bins', ref: { column: 'fare' }, edges: [0, 10], closed: 'left' } }] }))).toEqual(['column_not_allowed_group_by']))
  it('column_not_allowed_aggregate', () => expect(codes(query({ aggregates: [{ name: 'd', kind: 'count_distinct', column: 'driver' }] }))).toEqual(['column_not_allowed_aggregate']))
  it('column_denied', () => expect(codes(query({ group_by: [{ name: 'l', domain: { kind: 'categories', ref: { column: 'license' }, values: ['HV1'] } }] }))).toEqual(['column_denied']))
  it('clip_required', () => expect(codes(query({ aggregates: [{ name: 'fare', kind: 'mean', column: 'fare', scale: 1, clip: [0, 1e6] }] }))).toEqual(['clip_required']))
  it('too_few_providers', () => {
    const strict = { ...policy, min_providers: 4 }
    expect(codes(query(), {}, strict)).toEqual(['too_few_providers'])
  })
  it('unknown_co_provider: every other provider must be a configured provider peer', () => {
    const notConfigured = new Map<string, 'provider' | 'buyer'>([[buyer.peerId, 'buyer'], [ps[1]?.peerId as string, 'provider']])
    expect(codes(query(), { configuredPeers: notConfigured })).toEqual(['unknown_co_provider'])
    const asBuyer = new Map<string, 'provider' | 'buyer'>([[buyer.peerId, 'buyer'], [ps[1]?.peerId as string, 'provider'], [ps[2]?.peerId as string, 'buyer']])
    expect(codes(query(), { configuredPeers: asBuyer })).toEqual(['unknown_co_provider'])
  })
  it('untrusted_co_providers', () => expect(codes(query({}, [ps[0] as Party, ps[1] as Party, other]))).toEqual(['untrusted_co_providers']))
  it('too_many_cells', () => expect(codes(query({ group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 100 } }, { name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }] }))).toEqual(['too_many_cells']))
  it('rate_limited: certified runs by this buyer in the last 24 h reach the limit', () => {
    const now = 1_700_000_000_000
    const asked: Array<[string, number]> = []
    const history = (n: number): PolicyHistory => ({ ...noHistory, certifiedRunsByBuyerSince: (b, since) => { asked.push([b, since]); return n } })
    expect(codes(query(), { now, history: history(1) })).toEqual([])
    expect(codes(query(), { now, history: history(2) })).toEqual(['rate_limited'])
    expect(asked[0]).toEqual([buyer.peerId, now - 86_400_000])
  })
  it('differencing: any query on a pinned source over another provider set, whatever the query says', () => {
    const q = query()
    const now = 1_700_000_000_000
    const pin = (over: Partial<Pin> = {}): Pin => ({
      group: 'group:default', providers: [ps[0]?.peerId as string, ps[1]?.peerId as string, other.peerId].sort(), proposal: 'ab'.repeat(32),
      buyer: other.peerId, dataset: 'elsewhere', at: now - 1000, until: now + 1000, ...over
    })
    // another buyer, another dataset name, another query: still refused, without naming the other buyer's run
    const d = evaluatePolicy(policy, ctx(q, { now, pins: [pin()] }))
    expect(d.reasons.map((r) => r.code)).toEqual(['differencing'])
    expect(d.reasons[0]?.message).toContain('in a run for another buyer')
    expect(d.reasons[0]?.message).not.toContain('abababababababab')
    expect(d.reasons[0]?.message).not.toContain('elsewhere')
    // the asking buyer's own earlier run is named (proposal, dataset, time); a source pin never by its path
    const own = evaluatePolicy(policy, ctx(q, { now, source: 'csv:/data/trips.csv', pins: [pin({ buyer: buyer.peerId, group: 'source:csv:/data/trips.csv' })] }))
    expect(own.reasons[0]?.message).toContain('abababababababab')
    expect(own.reasons[0]?.message).toContain('"elsewhere"')
    expect(own.reasons[0]?.message).toContain('the same data source')
    expect(own.reasons[0]?.message).not.toContain('/data/trips.csv')
    // the same set is fine; a lapsed pin is ignored; window 0 disables the check
    expect(codes(q, { now, pins: [pin({ providers: q.participants.providers })] })).toEqual([])
    expect(codes(q, { now, pins: [pin({ until: now - 1 })] })).toEqual([])
    expect(codes(q, { now, pins: [pin()] }, { ...policy, differencing_window_s: 0 })).toEqual([])
    // a pin on the resolved source catches a dataset in another pin group that reads the same files
    const other_group = { ...policy, datasets: { trips: { ...policy.datasets.trips as NonNullable<Policy['datasets']['trips']>, pin_group: 'g2' } } }
    expect(codes(q, { now, pins: [pin()] }, other_group)).toEqual([])
    expect(codes(q, { now, source: 'csv:/data/trips.csv', pins: [pin({ group: 'source:csv:/data/trips.csv' })] }, other_group)).toEqual(['differencing'])
    // per_buyer narrows the pin to the buyer who was served
    const perBuyer = { ...policy, differencing_scope: 'per_buyer' as const }
    expect(codes(q, { now, pins: [pin({ group: `buyer:${other.peerId}/group:default` })] }, perBuyer)).toEqual([])
    expect(codes(q, { now, pins: [pin({ group: `buyer:${buyer.peerId}/group:default` })] }, perBuyer)).toEqual(['differencing'])
  })
  it('row_bound: max_rows_per_provider below the dataset\'s floor (issue 14 §1: the clamp bound is not the buyer\'s probe)', () => {
    expect(codes(query({ max_rows_per_provider: 999 }))).toEqual(['row_bound'])
    expect(codes(query({ max_rows_per_provider: 1 }))).toEqual(['row_bound'])
    expect(codes(query({ max_rows_per_provider: 1000 }))).toEqual([])
    const r = evaluatePolicy(policy, ctx(query({ max_rows_per_provider: 5 })))
    expect(r.reasons[0]?.message).toMatch(/max_rows_per_provider 5 is below this provider's floor of 1000 for dataset "trips" \(policy datasets\.trips\.max_rows_floor\)/)
    // the default floor, when a policy sets none
    const dflt = parsePolicyText(POLICY.replace('    max_rows_floor: 1000\n', ''), 'p.yaml', resolve)
    expect(dflt.datasets.trips?.max_rows_floor).toBe(DEFAULT_MAX_ROWS_FLOOR)
    expect(() => parsePolicyText(POLICY.replace('max_rows_floor: 1000', 'max_rows_floor: 0'), 'p.yaml', resolve)).toThrow(/datasets\.trips\.max_rows_floor: expected an integer ≥ 1/)
  })
  it('output_not_allowed', () => expect(codes(query({ output: [buyer.peerId, ps[1]?.peerId] }))).toEqual(['output_not_allowed']))
  it('collects every failing rule at once, not just the first', () => {
    const q = query({
      filter: { op: 'is_null', ref: { column: 'driver' }, negated: false },
      group_by: [{ name: 'l', domain: { kind: 'categories', ref: { column: 'license' }, values: ['HV1'] } }],
      aggregates: [{ name: 'fare', kind: 'sum', column: 'fare', scale: 1, clip: [0, 1e6] }],
      output: [buyer.peerId, ps[1]?.peerId]
    }, [ps[0] as Party, ps[1] as Party, other])
    const got = codes(q, { buyer: other.peerId, history: { ...noHistory, certifiedRunsByBuyerSince: () => 9 } }, { ...policy, max_cells: 0 })
    expect(got.sort()).toEqual(['buyer_mismatch', 'buyer_not_allowed', 'clip_required', 'column_denied', 'column_not_allowed_filter', 'output_not_allowed', 'rate_limited', 'too_many_cells', 'untrusted_co_providers'].sort())
    const d = evaluatePolicy(policy, ctx(query({ dataset: 'payroll' })))
    expect(d.accept).toBe(false)
    expect(d.reasons[0]?.message).toBe('dataset "payroll" is not exposed by this provider\'s policy')
  })

  it('names peers in reasons when the caller passes nameOf', () => {
    const nameOf = (id: string): string => [...names].find(([, v]) => v === id)?.[0] ?? id
    const [r] = evaluatePolicy({ ...policy, buyers: [] }, { ...ctx(query()), nameOf }).reasons
    expect(r?.message).toMatch(/^buyer city \(12D3KooW.{4}…\) is not in this provider's buyers list/)
  })

  it('describes a proposal in plain language', () => {
    const nameOf = (id: string): string => [...names].find(([, v]) => v === id)?.[0] ?? id
    const lines = describeProposal(query({ output: [buyer.peerId, ps[1]?.peerId] }), nameOf)
    expect(lines[0]).toBe('city asks: "t" (query q)')
    expect(lines.join('\n')).toContain('filter: fare > 0')
    expect(lines.join('\n')).toContain('zone (10 values) × h (24 values) = 240 cells')
    expect(lines.join('\n')).toContain('sum of fare clipped to [0, 100]')
    expect(lines.join('\n')).toContain('with 3 providers: p1, p2, p3')
    expect(lines.at(-1)).toContain('also sent to p2')
    expect(describeProposal(query(), nameOf).at(-1)).toContain('nobody else receives them')
  })
})

describe('policy.yaml', () => {
  it('resolves names to peer IDs and applies defaults', () => {
    expect(policy.buyers).toEqual([buyer.peerId])
    expect(policy.trusted_co_providers).toEqual({ peers: [ps[1]?.peerId, ps[2]?.peerId], min: 2 })
    expect(policy.allowed_outputs).toEqual(['buyer'])
    expect(policy.datasets.trips?.required_clip).toEqual({ fare: [0, 500] })
    expect(policy.datasets.trips?.pin_group).toBe('default')
    expect(parsePolicyText(POLICY.replace('    deny_columns:', '    pin_group: east\n    deny_columns:') + 'differencing_scope: per_buyer\n', 'p', resolve))
      .toMatchObject({ differencing_scope: 'per_buyer', datasets: { trips: { pin_group: 'east' } } })
    const min = parsePolicyText('buyers: [city, x]\nallowed_outputs: [buyer, p2]\n', 'policy.yaml', resolve)
    expect(min).toEqual({
      approval: 'auto', buyers: [buyer.peerId, other.peerId], datasets: {}, min_providers: 3,
      trusted_co_providers: { peers: [], min: 0 }, max_cells: 1_000_000, max_runs_per_buyer_per_day: 100,
      differencing_window_s: 86_400, differencing_scope: 'all_buyers', allowed_outputs: ['buyer', ps[1]?.peerId]
    })
  })

  it.each([
    ['min_providers 2', POLICY.replace('min_providers: 3', 'min_providers: 2'), /policy\.yaml: min_providers: must be at least 3/],
    ['unknown key', POLICY + 'bogus: 1\n', /policy\.yaml: \(root\): unknown key "bogus"/],
    ['unknown dataset rule', POLICY.replace('    deny_columns:', '    allow_everything: true\n    deny_columns:'), /datasets\.trips: unknown key "allow_everything"/],
    ['unknown peer name', POLICY.replace('[p2, p3]', '[p2, nobody]'), /trusted_co_providers\.peers\[1\]: "nobody" is neither a configured peer nor a peer ID/],
    ['unknown buyer name', POLICY.replace('buyers: [city]', 'buyers: [town]'), /buyers\[0\]: "town"/],
    ['bad approval', POLICY.replace('approval: auto', 'approval: sometimes'), /approval: must be auto or manual/],
    ['a bad required clip', POLICY.replace('fare: [0, 500]', 'fare: [500, 0]'), /required_clip\.fare: expected \[min, max\]/],
    ['an unsatisfiable trusted minimum', POLICY.replace('min: 2 }', 'min: 3 }'), /trusted_co_providers\.min: 3 exceeds the 2 peers listed/],
    ['a non-integer limit', POLICY.replace('max_cells: 1000', 'max_cells: 1.5'), /max_cells: expected an integer ≥ 1/],
    ['a column list that is not strings', POLICY.replace('aggregate_columns: [fare]', 'aggregate_columns: [1]'), /aggregate_columns: expected a list of strings/],
    ['a bad differencing scope', POLICY + 'differencing_scope: nobody\n', /differencing_scope: must be all_buyers or per_buyer/],
    ['a bad pin group', POLICY.replace('    deny_columns:', '    pin_group: "a b"\n    deny_columns:'), /pin_group: expected a name/],
    ['not YAML', 'buyers: [city\n', /not valid YAML/]
  ])('refuses a policy file with %s', (_n, text, re) => {
    expect(() => parsePolicyText(text, 'policy.yaml', resolve)).toThrow(PolicyError)
    expect(() => parsePolicyText(text, 'policy.yaml', resolve)).toThrow(re)
  })

  it('a missing policy.yaml tells the operator to write one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpc-policy-'))
    expect(() => loadPolicy(join(dir, 'policy.yaml'), resolve)).toThrow(PolicyError)
    expect(() => loadPolicy(join(dir, 'policy.yaml'), resolve)).toThrow(/no policy at .*policy\.yaml: write one/)
    writeFileSync(join(dir, 'policy.yaml'), POLICY)
    expect(loadPolicy(join(dir, 'policy.yaml'), resolve)).toEqual(policy)
  })
})
