// Query files: strict parsing with file-style error paths, defaults, limits, and resolution of
// participant names to canonical peer IDs.
import { describe, expect, it, beforeAll } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseQueryText, resolveQuery, loadQueryFile } from '../../src/query/parse.ts'
import { validateQuery, queryDigest, templateDigest } from '../../src/query/validate.ts'
import { QueryError } from '../../src/query/errors.ts'
import type { Query } from '../../src/query/types.ts'
import { columnsOf } from '../../src/query/columns.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import { makeParties, makeParty, type Party } from '../helpers/parties.ts'

let buyer: Party, ps: Party[], stranger: Party
let names: Map<string, string>
const resolve = (x: string): string | undefined => names.get(x)

beforeAll(async () => {
  const parties = await makeParties(4)
  buyer = parties.buyer
  ps = parties.providers
  stranger = await makeParty()
  names = new Map([['city', buyer.peerId], ['alpha', ps[0]?.peerId as string], ['beta', ps[1]?.peerId as string], ['gamma', ps[2]?.peerId as string], ['delta', ps[3]?.peerId as string]])
})

const BASE = `id: pickups-zone-hour
title: Pickups per zone and hour of day, weekdays
dataset: trips
group_by:
  - { name: zone, kind: int_range, column: PULocationID, min: 1, max: 263 }
  - { name: hour, kind: hour_of_day, column: pickup_datetime }
  - { name: day, kind: date, column: pickup_datetime, from: 2024-03-01, to: 2024-03-03 }
aggregates:
  - { name: pickups, kind: count }
  - { name: fare, kind: mean, column: base_passenger_fare, scale: 100, clip: [0, 500] }
participants: { providers: [gamma, alpha, beta] }
`

const load = (text: string, self = buyer.peerId): Query => resolveQuery(parseQueryText(text, 'q.yaml'), self, resolve)

describe('nulls and out_of_domain left the query model (issue 14 §1)', () => {
  it('fail is refused at parse with one line saying what to use instead', () => {
    const withAgg = BASE.replace('clip: [0, 500] }', 'clip: [0, 500], nulls: fail }')
    expect(() => load(withAgg)).toThrow(/^q\.yaml: aggregates\[1\]\.nulls: "fail" is no longer supported: NULL values are always skipped .*remove the key .*data preview/)
    expect(() => load(`${BASE}out_of_domain: fail\n`)).toThrow(/^q\.yaml: out_of_domain: "fail" is no longer supported: rows outside a group_by domain are always dropped .*remove the key/)
    for (const bad of [withAgg, `${BASE}out_of_domain: fail\n`]) {
      try {
        load(bad)
      } catch (e) {
        expect((e as Error).message).not.toContain('\n')
      }
    }
  })
  it('the one remaining value (skip, drop) is accepted and leaves no trace in the canonical query', () => {
    const q = load(`${BASE.replace('clip: [0, 500] }', 'clip: [0, 500], nulls: skip }')}out_of_domain: drop\n`)
    expect(q).toEqual(load(BASE))
    expect(JSON.stringify(q)).not.toMatch(/nulls|out_of_domain/)
  })
})

describe('query file defaults and resolution', () => {
  it('applies the defaults of formats.md', () => {
    const q = load(BASE)
    expect('out_of_domain' in q).toBe(false)
    expect(q.max_rows_per_provider).toBe(1e8)
    expect(q.min_providers).toBe(3)
    expect(q.output).toEqual([buyer.peerId])
    expect(q.timeouts).toEqual({ negotiate_s: 30, compute_s: 300, confirm_s: 30 })
    expect(q.filter).toBeNull()
    expect(q.timezone).toBe('UTC')
    expect(q.aggregates[1]).toEqual({ name: 'fare', kind: 'mean', column: 'base_passenger_fare', scale: 100, clip: [0, 500] })
    expect(q.group_by[2]?.domain).toEqual({ kind: 'date', column: 'pickup_datetime', from: '2024-03-01', to: '2024-03-03' })
    expect(validateQuery(JSON.parse(JSON.stringify(q)))).toEqual(q)
  })

  it('keeps the draft a Query with names: participants and output unresolved', () => {
    const d = parseQueryText(BASE + 'output: [buyer, beta]\n', 'q.yaml')
    expect(d.participants).toEqual({ buyer: null, providers: ['gamma', 'alpha', 'beta'] })
    expect(d.output).toEqual(['buyer', 'beta'])
    expect(d.group_by[0]).toEqual({ name: 'zone', domain: { kind: 'int_range', ref: { column: 'PULocationID' }, min: 1, max: 263 } })
  })

  it('resolves names, sorts providers canonically, and the file order does not change the digest', () => {
    const q = load(BASE)
    expect(q.participants).toEqual({ buyer: buyer.peerId, providers: ps.slice(0, 3).map((p) => p.peerId) })
    const q2 = load(BASE.replace('[gamma, alpha, beta]', '[beta, gamma, alpha]'))
    expect(toHex(queryDigest(q2))).toBe(toHex(queryDigest(q)))
  })

  it('lets a literal peer ID through even when it is not configured', () => {
    const q = load(BASE.replace('[gamma, alpha, beta]', `[gamma, alpha, ${stranger.peerId}]`))
    expect(q.participants.providers).toContain(stranger.peerId)
  })

  it('defaults the buyer to self, or resolves a named one; "buyer" in output is the buyer', () => {
    const other = load(BASE.replace('participants: {', 'participants: { buyer: city,'), stranger.peerId)
    expect(other.participants.buyer).toBe(buyer.peerId)
    const self = load(BASE, stranger.peerId)
    expect(self.participants.buyer).toBe(stranger.peerId)
    const out = load(BASE + 'output: [beta, buyer]\n')
    expect(out.output).toEqual([buyer.peerId, ps[1]?.peerId])
    const implicitBuyer = load(BASE + 'output: [beta]\n')
    expect(implicitBuyer.output).toEqual([buyer.peerId, ps[1]?.peerId])
  })

  it('reads JSON too, and loads from a file', () => {
    const json = JSON.stringify({ id: 'j', title: 'J', dataset: 'trips', aggregates: [{ name: 'n', kind: 'count' }], participants: { providers: ['alpha', 'beta', 'gamma'] } })
    expect(load(json).id).toBe('j')
    const dir = mkdtempSync(join(tmpdir(), 'mpc-query-'))
    writeFileSync(join(dir, 'q.yaml'), BASE)
    expect(loadQueryFile(join(dir, 'q.yaml'), buyer.peerId, resolve)).toEqual(load(BASE))
    expect(() => loadQueryFile(join(dir, 'missing.yaml'), buyer.peerId, resolve)).toThrow(/cannot read query file .*missing\.yaml \(ENOENT\)/)
  })

  it('a query changed only in its participants keeps its template digest', () => {
    const q = load(BASE)
    const q2 = load(BASE.replace('[gamma, alpha, beta]', '[delta, alpha, beta]').replace('id: pickups-zone-hour', 'id: other'))
    expect(toHex(templateDigest(q2))).toBe(toHex(templateDigest(q)))
    expect(toHex(queryDigest(q2))).not.toBe(toHex(queryDigest(q)))
  })
})

describe('query file strictness and limits', () => {
  it.each([
    ['unknown top-level key', BASE + 'bogus: 1\n', /^q\.yaml: \(root\): unknown key "bogus"/],
    ['unknown key in a group_by entry', BASE.replace('column: PULocationID,', 'column: PULocationID, colour: red,'), /q\.yaml: group_by\[0\]: unknown key "colour"/],
    ['key of another kind', BASE.replace('kind: hour_of_day,', 'kind: hour_of_day, min: 3,'), /group_by\[1\]: "min" does not apply to kind hour_of_day/],
    ['unknown group_by kind', BASE.replace('kind: hour_of_day', 'kind: minute'), /group_by\[1\]\.kind: expected int_range/],
    ['unknown key in an aggregate', BASE.replace('kind: count }', 'kind: count, where: x }'), /aggregates\[0\]: unknown key "where"/],
    ['clip on a count', BASE.replace('kind: count }', 'kind: count, clip: [0, 1] }'), /aggregates\[0\]: unknown key "clip"/],
    ['unknown key in participants', BASE.replace('participants: {', 'participants: { observers: [x],'), /participants: unknown key "observers"/],
    ['unknown key in timeouts', BASE + 'timeouts: { run_s: 3 }\n', /timeouts: unknown key "run_s"/],
    ['version in the file', BASE + 'version: 1\n', /unknown key "version"/],
    ['a fractional min, with the path as written', BASE.replace('min: 1,', 'min: 1.5,'), /^q\.yaml: group_by\[0\]\.min: expected an integer/],
    ['a bad column, with the path as written', BASE.replace('column: PULocationID', 'column: "a\\"b"'), /^q\.yaml: group_by\[0\]\.column: expected a column name/],
    ['a missing id', BASE.replace('id: pickups-zone-hour\n', ''), /\(root\): missing "id"/],
    ['a bad id', BASE.replace('id: pickups-zone-hour', 'id: Pickups Zone'), /q\.yaml: id: .* does not match/],
    ['a bad timezone', BASE + 'timezone: Mars/Olympus\n', /timezone: "Mars\/Olympus" is not an IANA time zone/],
    ['a bad filter, with source and position', BASE + 'filter: "zone = 1; DROP TABLE trips"\n', /^q\.yaml: filter: unexpected character ";" at position 9/],
    ['a filter that is not a string', BASE + 'filter: { op: cmp }\n', /filter: expected a filter expression as a string/],
    ['five group_by dimensions', BASE.replace('group_by:\n', 'group_by:\n  - { name: a, kind: day_of_week, column: t }\n  - { name: b, kind: day_of_week, column: t }\n'), /group_by: expected a list of 0\.\.4/],
    ['17 aggregates', BASE.replace('aggregates:\n', 'aggregates:\n' + Array.from({ length: 16 }, (_, i) => `  - { name: a${i}, kind: count }\n`).join('')), /aggregates: expected a list of 1\.\.16/],
    ['more than 10M cells', BASE.replace('max: 263', 'max: 100000000'), /q\.yaml: group_by: 7200000000 cells × 3 slots = 21600000000 values; at most 10000000 are allowed/],
    ['an overflowing sum', BASE.replace('clip: [0, 500]', 'clip: [0, 1000000000]') + 'max_rows_per_provider: 900000000000\n', /aggregates\[1\]: .* could overflow 2\^63: lower max_rows_per_provider, the clip or the scale/],
    ['clip reversed', BASE.replace('clip: [0, 500]', 'clip: [500, 0]'), /aggregates\[1\]\.clip: min must not exceed max/],
    ['min_providers 2', BASE + 'min_providers: 2\n', /min_providers: expected an integer in 3\.\./],
    ['two providers', BASE.replace('[gamma, alpha, beta]', '[alpha, beta]'), /participants\.providers: 2 listed, at least 3 needed/],
    ['fewer providers than min_providers', BASE + 'min_providers: 4\n', /3 listed, at least 4 needed/],
    ['not YAML', 'id: [unclosed\n', /^q\.yaml: not valid YAML or JSON/],
    ['duplicate YAML keys', BASE + 'id: again\n', /not valid YAML or JSON/],
    ['a list at the root', '- 1\n', /\(root\): expected a mapping/]
  ])('rejects %s', (_n, text, re) => {
    expect(() => load(text)).toThrow(QueryError)
    expect(() => load(text)).toThrow(re)
  })

  it.each([
    ['an unknown provider name', BASE.replace('gamma,', 'omega,'), /participants\.providers\[0\]: "omega" is neither a configured peer nor a peer ID: add it with `mpc-agent peers add omega/],
    ['an unknown output name', BASE + 'output: [omega]\n', /output\[0\]: "omega" is neither/],
    ['an unknown buyer name', BASE.replace('participants: {', 'participants: { buyer: town,'), /participants\.buyer: "town" is neither/],
    ['a provider listed twice', BASE.replace('gamma,', 'beta,'), /participants\.providers\[2\]: "beta" is the same peer as participants\.providers\[0\]/],
    ['a name and its peer ID', `${BASE.replace('gamma,', 'PEER,')}`, /is the same peer as/],
    ['the buyer as a provider', BASE.replace('gamma,', 'city,'), /participants\.providers\[0\]: "city" is the buyer/],
    ['an output that is not a provider', BASE + 'output: [buyer, delta]\n', /output: .* is not a provider of this query/],
    ['a misconfigured peer entry', BASE.replace('gamma,', 'broken,'), /"broken" is configured with an invalid peer ID/]
  ])('refuses %s', (_n, text, re) => {
    names.set('broken', 'not-a-peer-id')
    const t = text.replace('PEER', ps[1]?.peerId as string)
    expect(() => load(t)).toThrow(QueryError)
    expect(() => load(t)).toThrow(re)
  })
})

describe('columnsOf', () => {
  it('lists the columns each role reads, unique and sorted', () => {
    const full = load(BASE.replace('  - { name: pickups, kind: count }\n', '  - { name: pickups, kind: count }\n  - { name: v, kind: count_distinct, column: vehicle_id }\n  - { name: m, kind: sum, column: base_passenger_fare, clip: [0, 1] }\n')
      + "filter: \"hour(pickup_datetime) > 6 AND (trip_miles > 0 OR NOT PULocationID IN (1, 2)) AND trip_miles < 100\"\n")
    expect(columnsOf(full)).toEqual({
      filter: ['PULocationID', 'pickup_datetime', 'trip_miles'],
      group_by: ['PULocationID', 'pickup_datetime'],
      aggregates: ['base_passenger_fare', 'vehicle_id']
    })
  })
})
