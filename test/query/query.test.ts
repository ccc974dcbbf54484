// The query spec: filter language (round trip, injection), file parsing, strict validation, limits.
import { describe, expect, it, beforeAll } from 'vitest'
import fc from 'fast-check'
import { parseFilter, formatFilter } from '../../src/query/filter.ts'
import { parseQueryText, resolveQuery } from '../../src/query/parse.ts'
import { validateQuery, queryDigest, templateDigest } from '../../src/query/validate.ts'
import { QueryError } from '../../src/query/errors.ts'
import type { FilterExpr, Literal } from '../../src/query/types.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import { makeParties, type Party } from '../helpers/parties.ts'

const col = fc.oneof(fc.constantFrom('zone', 'fare', 'pickup_datetime', 'select', 'a b', "it's", 'x;y'), fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/))
const lit: fc.Arbitrary<Literal> = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((x) => x + 0),
  fc.string({ maxLength: 12 }), fc.boolean(), fc.constant(null)
)
const ref = fc.record({ column: col, fn: fc.constantFrom(undefined, 'hour', 'dow', 'date') }).map((r) => (r.fn ? { column: r.column, fn: r.fn } : { column: r.column }))
const leaf: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({ op: fc.constant('cmp' as const), cmp: fc.constantFrom('=', '!=', '<', '<=', '>', '>=' as const), ref, value: lit }),
  fc.record({ op: fc.constant('in' as const), ref, values: fc.array(lit, { minLength: 1, maxLength: 4 }), negated: fc.boolean() }),
  fc.record({ op: fc.constant('between' as const), ref, low: lit, high: lit, negated: fc.boolean() }),
  fc.record({ op: fc.constant('is_null' as const), ref, negated: fc.boolean() })
) as fc.Arbitrary<FilterExpr>
const expr: fc.Arbitrary<FilterExpr> = fc.letrec((tie) => ({
  e: fc.oneof({ depthSize: 'small' }, leaf,
    fc.record({ op: fc.constantFrom('and' as const, 'or' as const), args: fc.array(tie('e') as fc.Arbitrary<FilterExpr>, { minLength: 2, maxLength: 3 }) }),
    fc.record({ op: fc.constant('not' as const), arg: tie('e') as fc.Arbitrary<FilterExpr> }))
})).e

describe('filter language', () => {
  it('round-trips: parseFilter(formatFilter(e)) equals e', () => {
    fc.assert(fc.property(expr, (e) => {
      expect(parseFilter(formatFilter(e))).toEqual(e)
    }), { numRuns: 300 })
  })

  it('parses precedence, functions and quoting', () => {
    expect(parseFilter("dow(pickup_datetime) BETWEEN 1 AND 5 AND fare > -2.5 OR \"it's\" = 'it''s'")).toEqual({
      op: 'or', args: [
        { op: 'and', args: [
          { op: 'between', ref: { column: 'pickup_datetime', fn: 'dow' }, low: 1, high: 5, negated: false },
          { op: 'cmp', cmp: '>', ref: { column: 'fare' }, value: -2.5 }] },
        { op: 'cmp', cmp: '=', ref: { column: "it's" }, value: "it's" }]
    })
  })

  it.each([
    "zone = 1; DROP TABLE trips",
    "zone = 1 -- comment",
    "zone = 1 /* x */",
    "SELECT * FROM trips",
    "zone = (SELECT 1)",
    "upper(zone) = 'A'",
    "zone = 'unterminated",
    "zone IN ()",
    "\"a\"\"b\" = 1",
    "zone = 1 OR",
    "NOT",
    '('.repeat(40) + 'zone = 1' + ')'.repeat(40)
  ])('rejects %j with a QueryError naming the position', (text) => {
    expect(() => parseFilter(text)).toThrow(QueryError)
  })
})

describe('query files', () => {
  let parties: { buyer: Party; providers: Party[] }
  const names = ['alpha', 'beta', 'gamma']
  let resolve: (x: string) => string | undefined
  beforeAll(async () => {
    parties = await makeParties(3)
    resolve = (x) => {
      const i = names.indexOf(x)
      return i >= 0 ? parties.providers[i]?.peerId : x === 'city' ? parties.buyer.peerId : undefined
    }
  })
  const base = `id: q1
title: Pickups
dataset: trips
group_by:
  - { name: zone, kind: int_range, column: PULocationID, min: 1, max: 263 }
  - { name: hour, kind: hour_of_day, column: pickup_datetime }
  - { name: day, kind: date, column: pickup_datetime, from: 2024-03-01, to: 2024-03-03 }
aggregates:
  - { name: pickups, kind: count }
  - { name: fare, kind: mean, column: base_passenger_fare, scale: 100, clip: [0, 500] }
participants: { providers: [alpha, beta, gamma] }
`
  const load = (text: string): ReturnType<typeof resolveQuery> => resolveQuery(parseQueryText(text, 'q.yaml'), parties.buyer.peerId, resolve)

  it('applies defaults, resolves names to canonical peer IDs, and validates its own output', () => {
    const q = load(base)
    expect(q.participants.buyer).toBe(parties.buyer.peerId)
    expect(q.participants.providers).toEqual(parties.providers.map((p) => p.peerId))
    expect(q.output).toEqual([parties.buyer.peerId])
    expect(q.timeouts).toEqual({ negotiate_s: 30, compute_s: 300, confirm_s: 30 })
    expect(q.group_by[2]?.domain).toEqual({ kind: 'date', column: 'pickup_datetime', from: '2024-03-01', to: '2024-03-03' })
    expect(validateQuery(JSON.parse(JSON.stringify(q)))).toEqual(q)
    // provider order in the file does not change the digest
    const q2 = load(base.replace('[alpha, beta, gamma]', '[gamma, alpha, beta]'))
    expect(toHex(queryDigest(q2))).toBe(toHex(queryDigest(q)))
    // the template ignores who is asked
    const q3 = load(base.replace('id: q1', 'id: q2'))
    expect(toHex(templateDigest(q3))).toBe(toHex(templateDigest(q)))
    expect(toHex(queryDigest(q3))).not.toBe(toHex(queryDigest(q)))
  })

  it.each([
    ['unknown key', base + 'bogus: 1\n', /unknown key "bogus"/],
    ['unknown provider', base.replace('gamma]', 'delta]'), /"delta" is neither a configured peer/],
    ['too few providers', base.replace('[alpha, beta, gamma]', '[alpha, beta]'), /providers/],
    ['duplicate provider', base.replace('gamma]', 'alpha]'), /listed twice/],
    ['too many cells', base.replace('max: 263', 'max: 100000000'), /at most 10000000/],
    ['overflow', base.replace('clip: [0, 500]', 'clip: [0, 1000000000]') + 'max_rows_per_provider: 900000000000\n', /could overflow 2\^63/],
    ['bad timezone', base + 'timezone: Mars/Olympus\n', /IANA/],
    ['bad filter', base + "filter: \"zone = 1; DROP\"\n", /filter/],
    ['key of another kind', base.replace('kind: hour_of_day,', 'kind: hour_of_day, min: 3,'), /does not apply/],
    ['clip reversed', base.replace('clip: [0, 500]', 'clip: [500, 0]'), /min must not exceed max/]
  ])('rejects %s', (_n, text, re) => {
    expect(() => load(text)).toThrow(re)
  })

  it('validateQuery refuses tampering from the wire', () => {
    const q = load(base)
    const bad = (f: (x: Record<string, unknown>) => void): void => {
      const x = JSON.parse(JSON.stringify(q)) as Record<string, unknown>
      f(x)
      expect(() => validateQuery(x)).toThrow(QueryError)
    }
    bad((x) => { x.extra = 1 })
    bad((x) => { (x.participants as { providers: string[] }).providers.reverse() })
    bad((x) => { x.min_providers = 2 })
    bad((x) => { x.output = [parties.providers[0]?.peerId] })
    bad((x) => { (x.aggregates as Array<Record<string, unknown>>)[1]!.scale = -1 })
    bad((x) => { x.version = 2 })
  })
})
