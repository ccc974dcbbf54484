// validateQuery: the provider's strict check of the canonical query inside a signed proposal.
// Round trip through JSON, one rejection per rule (tampering), the cell limit, the overflow bound,
// and the two digests.
import { describe, expect, it, beforeAll } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { validateQuery, queryDigest, templateDigest } from '../../src/query/validate.ts'
import { QueryError } from '../../src/query/errors.ts'
import { parseFilter } from '../../src/query/filter.ts'
import type { FilterExpr, Query } from '../../src/query/types.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import { makeParties, makeParty, type Party } from '../helpers/parties.ts'

let buyer: Party, ps: Party[], outsider: Party

beforeAll(async () => {
  const parties = await makeParties(4)
  buyer = parties.buyer
  ps = parties.providers // canonical order
  outsider = await makeParty()
})

/** A query using every domain and aggregate kind; `over` replaces top-level fields. */
function raw(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    id: 'pickups-zone-hour.v2_x',
    title: 'Pickups per zone and hour',
    dataset: 'trips',
    timezone: 'America/New_York',
    filter: parseFilter("dow(pickup_datetime) BETWEEN 1 AND 5 AND trip_miles > 0 AND company NOT IN ('a', 'b') AND fare IS NOT NULL"),
    group_by: [
      { name: 'zone', domain: { kind: 'int_range', ref: { column: 'PULocationID' }, min: 1, max: 263 } },
      { name: 'hour', domain: { kind: 'hour_of_day', column: 'pickup_datetime' } },
      { name: 'miles', domain: { kind: 'bins', ref: { column: 'trip_miles' }, edges: [0, 1, 5, 10.5], closed: 'right' } },
      { name: 'day', domain: { kind: 'date', column: 'pickup_datetime', from: '2024-02-28', to: '2024-03-01' } }
    ],
    aggregates: [
      { name: 'pickups', kind: 'count' },
      { name: 'fare', kind: 'mean', column: 'base_passenger_fare', scale: 100, clip: [-10, 500] },
      { name: 'miles_total', kind: 'sum', column: 'trip_miles', scale: 1000, clip: [0, 100] },
      { name: 'vehicles', kind: 'count_distinct', column: 'vehicle_id' }
    ],
    max_rows_per_provider: 100_000_000,
    participants: { buyer: buyer.peerId, providers: ps.slice(0, 3).map((p) => p.peerId) },
    min_providers: 3,
    output: [buyer.peerId, ps[1]?.peerId],
    timeouts: { negotiate_s: 30, compute_s: 300, confirm_s: 30 },
    ...over
  }
}

const wire = (q: unknown): unknown => JSON.parse(JSON.stringify(q))

describe('validateQuery round trip', () => {
  it('validateQuery(JSON round trip of q) deep-equals q, and the digest is stable', () => {
    const q = validateQuery(raw())
    const again = validateQuery(wire(q))
    expect(again).toEqual(q)
    expect(toHex(queryDigest(again))).toBe(toHex(queryDigest(q)))
  })

  it('holds for categories and day_of_week domains, fn refs, and no filter', () => {
    const q = validateQuery(raw({
      filter: null,
      group_by: [
        { name: 'h', domain: { kind: 'categories', ref: { column: 'pickup_datetime', fn: 'hour' }, values: [7, 8, 'other'] } },
        { name: 'dow', domain: { kind: 'day_of_week', column: 'pickup_datetime' } }
      ]
    }))
    expect(validateQuery(wire(q))).toEqual(q)
  })

  it('accepts canonical IANA zones and the aliases Intl knows (UTC, US/Eastern, Etc/GMT+5), exactly as before the fast path', () => {
    for (const round of [1, 2]) { // the second round answers aliases from the process's memory of them
      for (const tz of ['America/New_York', 'Europe/Berlin', 'UTC', 'US/Eastern', 'Etc/GMT+5', 'GMT']) {
        expect(validateQuery(raw({ timezone: tz })).timezone, `${tz} (${round})`).toBe(tz)
        expect(() => new Intl.DateTimeFormat('en-US', { timeZone: tz })).not.toThrow()
      }
      for (const tz of ['Mars/Olympus', 'America/Nowhere', 'Europe/berlinn']) expect(() => validateQuery(raw({ timezone: tz })), `${tz} (${round})`).toThrow(/is not an IANA time zone/)
    }
  })

  it('normalises -0 so that the JSON round trip is exact', () => {
    const q = validateQuery(raw({ filter: { op: 'cmp', cmp: '>', ref: { column: 'x' }, value: -0 } }))
    expect(Object.is((q.filter as { value: number }).value, 0)).toBe(true)
    expect(validateQuery(wire(q))).toEqual(q)
  })

  it('holds for generated filters', async () => {
    const { formatFilter } = await import('../../src/query/filter.ts')
    const lit = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null))
    const leaf = fc.record({ op: fc.constant('cmp' as const), cmp: fc.constantFrom('=' as const, '<' as const), ref: fc.record({ column: fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !/["\0]/.test(s)) }), value: lit })
    const expr: fc.Arbitrary<FilterExpr> = fc.letrec<{ e: FilterExpr }>((tie) => ({
      e: fc.oneof({ depthSize: 'small' }, leaf,
        fc.record({ op: fc.constantFrom('and' as const, 'or' as const), args: fc.array(tie('e'), { minLength: 2, maxLength: 3 }) }),
        fc.record({ op: fc.constant('not' as const), arg: tie('e') }))
    })).e
    fc.assert(fc.property(expr, (f) => {
      const q = validateQuery(raw({ filter: f }))
      expect(validateQuery(wire(q))).toEqual(q)
      expect(parseFilter(formatFilter(q.filter as FilterExpr))).toEqual(q.filter)
    }), { numRuns: 100 })
  })
})

describe('validateQuery rejects', () => {
  type Case = [string, (x: Record<string, unknown>) => void, RegExp]
  const gb = (x: Record<string, unknown>, i: number): Record<string, unknown> => ((x.group_by as Array<{ domain: Record<string, unknown> }>)[i] as { domain: Record<string, unknown> }).domain
  const agg = (x: Record<string, unknown>, i: number): Record<string, unknown> => (x.aggregates as Array<Record<string, unknown>>)[i] as Record<string, unknown>
  const parts = (x: Record<string, unknown>): { buyer: string; providers: string[] } => x.participants as { buyer: string; providers: string[] }
  const cases: Case[] = [
    ['an unknown top-level key', (x) => { x.extra = 1 }, /\(root\): unknown key "extra"/],
    ['an unknown nested key', (x) => { agg(x, 0).column = 'c' }, /aggregates\[0\]: unknown key "column"/],
    ['an unknown key in a filter node', (x) => { (x.filter as Record<string, unknown>).sql = 'DROP' }, /filter: unknown key "sql"/],
    ['an unknown filter operator', (x) => { x.filter = { op: 'raw', sql: '1=1' } }, /filter\.op: unknown filter operator/],
    ['a missing key', (x) => { delete x.timeouts }, /\(root\): missing "timeouts"/],
    ['version 2', (x) => { x.version = 2 }, /version: only version 1/],
    ['a bad id', (x) => { x.id = 'Pickups!' }, /id: .* does not match/],
    ['a 65-character id', (x) => { x.id = 'a'.repeat(65) }, /id: expected a non-empty string of at most 64/],
    ['a 201-character title', (x) => { x.title = 't'.repeat(201) }, /title: expected a non-empty string of at most 200/],
    ['an unknown timezone', (x) => { x.timezone = 'Mars/Olympus' }, /timezone: "Mars\/Olympus" is not an IANA time zone/],
    ['five group_by dimensions', (x) => { x.group_by = Array.from({ length: 5 }, (_, i) => ({ name: `d${i}`, domain: { kind: 'day_of_week', column: 'ts' } })) }, /group_by: expected a list of 0\.\.4/],
    ['int_range max < min', (x) => { gb(x, 0).max = 0 }, /group_by\[0\]\.domain\.max: expected an integer in 1\.\./],
    ['a fractional int_range bound', (x) => { gb(x, 0).min = 0.5 }, /group_by\[0\]\.domain\.min: expected an integer/],
    ['bins not increasing', (x) => { gb(x, 2).edges = [0, 5, 5] }, /edges must increase strictly/],
    ['a single bin edge', (x) => { gb(x, 2).edges = [0] }, /edges: expected a list of 2\.\./],
    ['a bad bins closed side', (x) => { gb(x, 2).closed = 'both' }, /closed: expected one of left, right/],
    ['an impossible date', (x) => { gb(x, 3).to = '2024-02-30' }, /from\/to must be dates/],
    ['from after to', (x) => { gb(x, 3).from = '2024-03-02' }, /must span 1\.\./],
    ['empty categories', (x) => { x.group_by = [{ name: 'c', domain: { kind: 'categories', ref: { column: 'c' }, values: [] } }] }, /values: expected a list of 1\.\.10000/],
    ['duplicate categories', (x) => { x.group_by = [{ name: 'c', domain: { kind: 'categories', ref: { column: 'c' }, values: ['a', 'a'] } }] }, /values must be distinct/],
    ['10001 categories', (x) => { x.group_by = [{ name: 'c', domain: { kind: 'categories', ref: { column: 'c' }, values: Array.from({ length: 10_001 }, (_, i) => i) } }] }, /1\.\.10000/],
    ['an unknown time function', (x) => { gb(x, 0).ref = { column: 'c', fn: 'upper' } }, /ref\.fn: expected one of hour, dow, date/],
    ['no aggregates', (x) => { x.aggregates = [] }, /aggregates: expected a list of 1\.\.16/],
    ['17 aggregates', (x) => { x.aggregates = Array.from({ length: 17 }, (_, i) => ({ name: `a${i}`, kind: 'count' })) }, /1\.\.16/],
    ['duplicate aggregate names', (x) => { agg(x, 1).name = 'pickups' }, /names of dimensions and aggregates must be distinct/],
    ['scale 0', (x) => { agg(x, 1).scale = 0 }, /scale: must be in \(0, 1000000000\]/],
    ['scale above 1e9', (x) => { agg(x, 1).scale = 2e9 }, /scale: must be in/],
    ['a non-finite scale', (x) => { agg(x, 1).scale = Number.NaN }, /scale: expected a finite number/],
    ['clip reversed', (x) => { agg(x, 2).clip = [5, 1] }, /clip: min must not exceed max/],
    ['an infinite clip', (x) => { agg(x, 2).clip = [0, Infinity] }, /clip\[1\]: expected a finite number/],
    ['a nulls policy (removed from the model, issue 14)', (x) => { agg(x, 2).nulls = 'fail' }, /unknown key "nulls"/],
    ['providers out of canonical order', (x) => { parts(x).providers.reverse() }, /canonical order/],
    ['a duplicate provider', (x) => { parts(x).providers[1] = parts(x).providers[0] as string }, /must be distinct/],
    ['two providers', (x) => { parts(x).providers.pop() }, /participants\.providers: expected a list of 3\.\./],
    ['fewer providers than min_providers', (x) => { x.min_providers = 4 }, /3 providers, fewer than min_providers 4/],
    ['min_providers 2', (x) => { x.min_providers = 2 }, /min_providers: expected an integer in 3\.\./],
    ['a peer ID that is not one', (x) => { parts(x).buyer = 'QmNotAPeer' }, /participants\.buyer: not a peer ID/],
    ['the buyer as a provider', (x) => { parts(x).buyer = parts(x).providers[0] as string; x.output = [parts(x).buyer] }, /buyer cannot also be a provider/],
    ['an output that is not a participant', (x) => { x.output = [buyer.peerId, outsider.peerId] }, /is not a provider of this query/],
    ['an output without the buyer first', (x) => { x.output = [ps[0]?.peerId] }, /output: must start with the buyer/],
    ['a zero timeout', (x) => { x.timeouts = { negotiate_s: 0, compute_s: 300, confirm_s: 30 } }, /timeouts\.negotiate_s: expected an integer in 1\.\.3600/],
    ['a timeout above an hour', (x) => { x.timeouts = { negotiate_s: 30, compute_s: 3601, confirm_s: 30 } }, /timeouts\.compute_s/],
    ['max_rows_per_provider 0', (x) => { x.max_rows_per_provider = 0 }, /max_rows_per_provider: expected an integer in 1\.\.1000000000000/],
    ['max_rows_per_provider above 1e12', (x) => { x.max_rows_per_provider = 1e12 + 1 }, /max_rows_per_provider/],
    ['an out_of_domain policy (removed from the model, issue 14)', (x) => { x.out_of_domain = 'fail' }, /unknown key "out_of_domain"/],
    ['a string literal beyond 1000 characters', (x) => { x.filter = { op: 'cmp', cmp: '=', ref: { column: 'c' }, value: 'x'.repeat(1001) } }, /filter\.value: expected a literal/],
    ['a column name with a double quote', (x) => { x.filter = { op: 'is_null', ref: { column: 'a"b' }, negated: false } }, /filter\.ref\.column: expected a column name/],
    ['an escape sequence in the title', (x) => { x.title = 'ok\u001b[2K\rforged line' }, /title: control or bidi-override characters are not allowed/],
    ['a bidi override in a category', (x) => { x.group_by = [{ name: 'c', domain: { kind: 'categories', ref: { column: 'c' }, values: ['a\u202eb'] } }] }, /values\[0\]: control or bidi-override/],
    ['a newline in a column name', (x) => { x.filter = { op: 'is_null', ref: { column: 'a\nb' }, negated: false } }, /filter\.ref\.column: expected a column name/],
    ['a control character in a literal', (x) => { x.filter = { op: 'cmp', cmp: '=', ref: { column: 'c' }, value: 'a\u0007' } }, /filter\.value: expected a literal/],
    ['a one-argument AND', (x) => { x.filter = { op: 'and', args: [{ op: 'is_null', ref: { column: 'a' }, negated: false }] } }, /filter\.args: expected a list of 2\.\./]
  ]
  it.each(cases)('%s', (_name, tamper, re) => {
    const x = wire(raw()) as Record<string, unknown>
    tamper(x)
    expect(() => validateQuery(x)).toThrow(QueryError)
    expect(() => validateQuery(x)).toThrow(re)
  })

  it('a non-Ed25519 peer ID', async () => {
    const rsaLike = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    const x = wire(raw()) as Record<string, unknown>
    ;(x.participants as { buyer: string }).buyer = rsaLike
    expect(() => validateQuery(x)).toThrow(/is not an Ed25519 key/)
  })

  it('a filter nested deeper than 32 levels', () => {
    let f: FilterExpr = { op: 'is_null', ref: { column: 'a' }, negated: false }
    for (let i = 0; i < 32; i++) f = { op: 'not', arg: f }
    expect(validateQuery(raw({ filter: f })).filter).toEqual(f)
    expect(() => validateQuery(raw({ filter: { op: 'not', arg: f } }))).toThrow(/nested deeper than 32/)
  })

  it('more than 10M vector entries, saying how many', () => {
    const group_by = [
      { name: 'a', domain: { kind: 'int_range', ref: { column: 'a' }, min: 1, max: 10_000 } },
      { name: 'b', domain: { kind: 'int_range', ref: { column: 'b' }, min: 1, max: 1001 } }
    ]
    expect(() => validateQuery(raw({ group_by, aggregates: [{ name: 'n', kind: 'count' }] }))).toThrow(/10010000 cells × 1 slots = 10010000 values; at most 10000000/)
    const ok = [group_by[0], { name: 'b', domain: { kind: 'int_range', ref: { column: 'b' }, min: 1, max: 1000 } }]
    expect(validateQuery(raw({ group_by: ok, aggregates: [{ name: 'n', kind: 'count' }] })).group_by).toHaveLength(2)
    // a mean takes two slots
    expect(() => validateQuery(raw({ group_by: ok, aggregates: [{ name: 'm', kind: 'mean', column: 'x', scale: 1, clip: [0, 1] }] }))).toThrow(/2 slots = 20000000 values/)
  })

  it('a sum or mean that could overflow 2^63: N · max_rows · max|clip · scale| must stay below', () => {
    // 3 providers × 1e12 rows × 3e6 = 9e18 < 2^63 ≈ 9.223e18; 3.1e6 is over
    const sum = (lo: number, hi: number): Record<string, unknown> => raw({ max_rows_per_provider: 1e12, aggregates: [{ name: 's', kind: 'sum', column: 'x', scale: 1, clip: [lo, hi] }] })
    expect(validateQuery(sum(0, 3e6)).max_rows_per_provider).toBe(1e12)
    expect(() => validateQuery(sum(0, 3.1e6))).toThrow(/aggregates\[0\]: 3 providers × max_rows_per_provider 1000000000000 × \|clip × scale\| 3100000 could overflow 2\^63: lower max_rows_per_provider, the clip or the scale/)
    expect(() => validateQuery(sum(-3.1e6, 0))).toThrow(/could overflow/)
    // scale counts: clip 3e4 at scale 100 is 3e6
    expect(() => validateQuery(raw({ max_rows_per_provider: 1e12, aggregates: [{ name: 'm', kind: 'mean', column: 'x', scale: 103.4, clip: [0, 3e4] }] }))).toThrow(/could overflow/)
  })
})

describe('digests', () => {
  it('queryDigest covers every field; templateDigest ignores who is asked, the timeouts, id, title and names', () => {
    const base = validateQuery(raw())
    const d = (q: Query): string => toHex(queryDigest(q))
    const t = (q: Query): string => toHex(templateDigest(q))
    const sameTemplate = [
      raw({ id: 'other' }), raw({ title: 'Other' }), raw({ min_providers: 4, participants: { buyer: buyer.peerId, providers: ps.map((p) => p.peerId) } }),
      raw({ output: [buyer.peerId] }), raw({ timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } }),
      raw({ participants: { buyer: outsider.peerId, providers: ps.slice(1).map((p) => p.peerId) }, output: [outsider.peerId] }),
      { ...raw(), aggregates: (raw().aggregates as Array<Record<string, unknown>>).map((a, i) => ({ ...a, name: `renamed${i}` })) },
      { ...raw(), group_by: (raw().group_by as Array<Record<string, unknown>>).map((g, i) => ({ ...g, name: `dim${i}` })) }
    ]
    for (const r of sameTemplate) {
      const q = validateQuery(r)
      expect(t(q)).toBe(t(base))
      expect(d(q)).not.toBe(d(base))
    }
    const otherQuestion = [raw({ dataset: 'trips2' }), raw({ filter: null }), raw({ timezone: 'UTC' }), raw({ max_rows_per_provider: 5 })]
    for (const r of otherQuestion) expect(t(validateQuery(r))).not.toBe(t(base))
    expect(toHex(queryDigest(base))).toMatch(/^[0-9a-f]{64}$/)
    expect(t(base)).not.toBe(d(base)) // different labels
  })
})
