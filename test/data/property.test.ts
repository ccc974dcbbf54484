// Property: for random small datasets and random queries, computeVector equals an independent
// computation in plain TypeScript over the same rows (SQL three-valued logic for filters,
// negotiation.md §3.3 domains, §3.4 layout, §3.5 clip → scale → round half away from zero).
import { afterAll, describe, expect, it } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { computeVector, closeEngine } from '../../src/data/compute.ts'
import { fixedPoint, layoutOf } from '../../src/query/layout.ts'
import type { Aggregate, ColumnRef, Domain, FilterExpr, GroupBy, Literal } from '../../src/query/types.ts'
import { query, source, tmp } from './fixtures.ts'

const dir = tmp()
afterAll(async () => {
  await closeEngine()
  rmSync(dir, { recursive: true, force: true })
})

interface Row { zone: number | null; fare: number | null; cat: string | null; drv: string | null; ts: number | null }
type Val = number | string | null
const CATS = ['a', 'b', "c'd", 'q"r,s', '); DROP TABLE t; --']

const fareArb = fc.oneof(
  fc.double({ min: -60, max: 160, noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: -480, max: 1280 }).map((k) => k / 8), // exact .5 ties after scaling
  fc.integer({ min: -6000, max: 16000 }).map((k) => k / 1000) // the classic 1.005-style cases
)
const rowArb: fc.Arbitrary<Row> = fc.record({
  zone: fc.option(fc.integer({ min: -1, max: 6 }), { nil: null, freq: 8 }),
  fare: fc.option(fareArb, { nil: null, freq: 6 }),
  cat: fc.option(fc.constantFrom(...CATS), { nil: null, freq: 8 }),
  drv: fc.option(fc.constantFrom('d1', 'd2', 'd3', 'd4'), { nil: null, freq: 8 }),
  // naive wall-clock seconds since 2024-03-01 00:00 (a Friday), over 10 days
  ts: fc.option(fc.integer({ min: 0, max: 10 * 86400 - 1 }), { nil: null, freq: 8 })
})
const T0 = Date.UTC(2024, 2, 1)
const tsText = (s: number): string => new Date(T0 + s * 1000).toISOString().slice(0, 19).replace('T', ' ')
const timeFn = (fn: 'hour' | 'dow' | 'date', s: number): number | string => {
  const d = new Date(T0 + s * 1000)
  return fn === 'hour' ? d.getUTCHours() : fn === 'dow' ? d.getUTCDay() || 7 : d.toISOString().slice(0, 10)
}

const col = (r: Row, c: string): Val => (r as unknown as Record<string, Val>)[c] ?? null
const refVal = (r: Row, ref: ColumnRef): Val => {
  const v = col(r, ref.column)
  return ref.fn && v !== null ? timeFn(ref.fn, v as number) : v
}
const day = (iso: string): number => (Date.parse(iso + 'T00:00:00Z') - T0) / 86_400_000
const isoDay = (k: number): string => new Date(T0 + k * 86_400_000).toISOString().slice(0, 10)

const domainArb: fc.Arbitrary<Domain> = fc.oneof(
  fc.record({ min: fc.integer({ min: -1, max: 3 }), w: fc.integer({ min: 0, max: 3 }), c: fc.constantFrom('zone', 'fare') })
    .map(({ min, w, c }) => ({ kind: 'int_range', ref: { column: c }, min, max: min + w }) as Domain),
  fc.shuffledSubarray(CATS, { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: 'cat' }, values }) as Domain),
  fc.shuffledSubarray([0, 1, 2, 3, 5], { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: 'zone' }, values }) as Domain),
  fc.record({ edges: fc.uniqueArray(fc.integer({ min: -40, max: 140 }), { minLength: 2, maxLength: 5 }), closed: fc.constantFrom('left' as const, 'right' as const) })
    .map(({ edges, closed }) => ({ kind: 'bins', ref: { column: 'fare' }, edges: [...edges].sort((a, b) => a - b), closed }) as Domain),
  fc.constantFrom<Domain>({ kind: 'hour_of_day', column: 'ts' }, { kind: 'day_of_week', column: 'ts' }),
  fc.record({ from: fc.integer({ min: -1, max: 9 }), w: fc.integer({ min: 0, max: 4 }) }).map(({ from, w }) => ({ kind: 'date', column: 'ts', from: isoDay(from), to: isoDay(from + w) }) as Domain),
  fc.shuffledSubarray([0, 7, 8, 17, 23], { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: 'ts', fn: 'hour' }, values }) as Domain),
  fc.shuffledSubarray([1, 2, 3, 4, 5].map(isoDay), { minLength: 1 }).map((values) => ({ kind: 'categories', ref: { column: 'ts', fn: 'date' }, values }) as Domain)
)

const aggArb: fc.Arbitrary<Omit<Aggregate, 'name'>> = fc.oneof(
  fc.constant({ kind: 'count' as const }),
  fc.constant({ kind: 'count_distinct' as const, column: 'drv' }),
  fc.record({
    kind: fc.constantFrom('sum' as const, 'mean' as const),
    lo: fc.integer({ min: -30, max: 20 }), span: fc.integer({ min: 0, max: 120 }),
    scale: fc.constantFrom(1, 3, 10, 100, 1000, 0.5, 0.01)
  }).map(({ kind, lo, span, scale }) => ({ kind, column: 'fare', scale, clip: [lo, lo + span] as [number, number] }))
)

const numRef = fc.constantFrom<ColumnRef>({ column: 'zone' }, { column: 'fare' })
const leafArb: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({ ref: numRef, cmp: fc.constantFrom('=' as const, '!=' as const, '<' as const, '<=' as const, '>' as const, '>=' as const), value: fc.integer({ min: -40, max: 400 }).map((k) => k / 4) })
    .map((x) => ({ op: 'cmp', ...x }) as FilterExpr),
  fc.record({ values: fc.shuffledSubarray(CATS, { minLength: 1 }), negated: fc.boolean() }).map((x) => ({ op: 'in', ref: { column: 'cat' }, ...x }) as FilterExpr),
  fc.record({ low: fc.integer({ min: -1, max: 4 }), w: fc.integer({ min: 0, max: 3 }), negated: fc.boolean() })
    .map(({ low, w, negated }) => ({ op: 'between', ref: { column: 'zone' }, low, high: low + w, negated }) as FilterExpr),
  fc.record({ ref: fc.constantFrom<ColumnRef>({ column: 'fare' }, { column: 'cat' }, { column: 'ts' }), negated: fc.boolean() }).map((x) => ({ op: 'is_null', ...x }) as FilterExpr),
  fc.record({ low: fc.integer({ min: 1, max: 7 }), w: fc.integer({ min: 0, max: 3 }), negated: fc.boolean() })
    .map(({ low, w, negated }) => ({ op: 'between', ref: { column: 'ts', fn: 'dow' }, low, high: low + w, negated }) as FilterExpr),
  fc.record({ cmp: fc.constantFrom('<' as const, '>=' as const, '=' as const), k: fc.integer({ min: 0, max: 9 }) })
    .map(({ cmp, k }) => ({ op: 'cmp', cmp, ref: { column: 'ts', fn: 'date' }, value: isoDay(k) }) as FilterExpr),
  fc.record({ values: fc.shuffledSubarray([6, 7, 8, 9, 17, 18], { minLength: 1 }), negated: fc.boolean() }).map((x) => ({ op: 'in', ref: { column: 'ts', fn: 'hour' }, ...x }) as FilterExpr)
)
const filterArb: fc.Arbitrary<FilterExpr | null> = fc.oneof(
  fc.constant(null),
  leafArb,
  leafArb.map((arg) => ({ op: 'not', arg }) as FilterExpr),
  fc.record({ op: fc.constantFrom('and' as const, 'or' as const), args: fc.array(leafArb, { minLength: 2, maxLength: 3 }) }) as fc.Arbitrary<FilterExpr>
)

// ---- the independent reference ----
type Tri = boolean | null
const cmpv = (a: Val, b: Literal): number => (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0
function evalFilter(e: FilterExpr, r: Row): Tri {
  switch (e.op) {
    case 'and': {
      const v = e.args.map((a) => evalFilter(a, r))
      return v.includes(false) ? false : v.includes(null) ? null : true
    }
    case 'or': {
      const v = e.args.map((a) => evalFilter(a, r))
      return v.includes(true) ? true : v.includes(null) ? null : false
    }
    case 'not': {
      const v = evalFilter(e.arg, r)
      return v === null ? null : !v
    }
    case 'cmp': {
      const x = refVal(r, e.ref)
      if (x === null) return null
      const c = cmpv(x, e.value)
      return { '=': c === 0, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[e.cmp]
    }
    case 'in': {
      const x = refVal(r, e.ref)
      if (x === null) return null
      return e.values.includes(x) !== e.negated
    }
    case 'between': {
      const x = refVal(r, e.ref)
      if (x === null) return null
      return (cmpv(x, e.low) >= 0 && cmpv(x, e.high) <= 0) !== e.negated
    }
    case 'is_null':
      return (col(r, e.ref.column) === null) !== e.negated
  }
}
function indexOf(d: Domain, r: Row): number | null {
  if (!('ref' in d)) {
    if (r.ts === null) return null
    if (d.kind === 'hour_of_day') return timeFn('hour', r.ts) as number
    if (d.kind === 'day_of_week') return (timeFn('dow', r.ts) as number) - 1
    const k = day(timeFn('date', r.ts) as string) - day(d.from)
    return k >= 0 && k <= day(d.to) - day(d.from) ? k : null
  }
  const x = refVal(r, d.ref)
  if (x === null) return null
  switch (d.kind) {
    case 'int_range':
      return Number.isInteger(x) && (x as number) >= d.min && (x as number) <= d.max ? (x as number) - d.min : null
    case 'categories': {
      const i = d.values.indexOf(x as never)
      return i < 0 ? null : i
    }
    case 'bins': {
      const v = x as number
      for (let i = 0; i + 1 < d.edges.length; i++) {
        const lo = d.edges[i] as number
        const hi = d.edges[i + 1] as number
        if (d.closed === 'left' ? v >= lo && v < hi : v > lo && v <= hi) return i
      }
      return null
    }
  }
}
const clip = (v: number, [lo, hi]: [number, number]): number => (v < lo ? lo : v > hi ? hi : v)

function reference(rows: Row[], group: GroupBy[], aggs: Aggregate[], filter: FilterExpr | null) {
  const layout = layoutOf({ group_by: group, aggregates: aggs })
  const per = layout.slots.length
  const out = new BigUint64Array(layout.length)
  const distinct = new Map<number, Set<string>>()
  const stats = { rows: rows.length, matched: 0, filtered: 0, outOfDomain: 0, nullsSkipped: 0, clipped: 0 }
  for (const r of rows) {
    if (filter && evalFilter(filter, r) !== true) { stats.filtered++; continue }
    let cell = 0
    let inside = true
    group.forEach((g, i) => {
      const x = indexOf(g.domain, r)
      if (x === null) inside = false
      else cell = cell * (layout.dims[i]?.size ?? 0) + x
    })
    if (!inside) { stats.outOfDomain++; continue }
    stats.matched++
    let s = 0
    aggs.forEach((a, ai) => {
      const at = cell * per + s
      if (a.kind === 'count') out[at] = (out[at] as bigint) + 1n
      else if (a.kind === 'count_distinct') {
        const k = cell * 100 + ai
        const set = distinct.get(k) ?? new Set()
        if (r.drv !== null) set.add(r.drv)
        distinct.set(k, set)
        out[at] = BigInt(set.size)
      } else {
        if (r.fare === null) stats.nullsSkipped++
        else {
          if (r.fare < a.clip[0] || r.fare > a.clip[1]) stats.clipped++
          out[at] = BigInt.asUintN(64, (out[at] as bigint) + fixedPoint(clip(r.fare, a.clip), a.scale))
          if (a.kind === 'mean') out[at + 1] = (out[at + 1] as bigint) + 1n
        }
      }
      s += a.kind === 'mean' ? 2 : 1
    })
  }
  return { vector: out, stats }
}

const csvField = (v: Val): string => (v === null ? '' : typeof v === 'number' ? String(v) : `"${v.replace(/"/g, '""')}"`)

describe('property: computeVector equals an independent TypeScript computation', () => {
  let run = 0
  it('random data, domains, aggregates, clips, scales and filters', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(rowArb, { maxLength: 60 }), fc.array(domainArb, { maxLength: 2 }), fc.array(aggArb, { minLength: 1, maxLength: 3 }), filterArb,
      async (rows, domains, aggs0, filter) => {
        const group: GroupBy[] = domains.map((domain, i) => ({ name: `g${i}`, domain }))
        const aggregates = aggs0.map((a, i) => ({ ...a, name: `a${i}` }) as Aggregate)
        const file = join(dir, `p${run++}.csv`)
        writeFileSync(file, 'zone,fare,cat,drv,ts\n' + rows.map((r) => [r.zone, r.fare, r.cat, r.drv, r.ts === null ? null : tsText(r.ts)].map(csvField).join(',')).join('\n') + '\n')
        const q = await query({ group_by: group, aggregates, filter, timezone: 'Asia/Kolkata' }) // naive TIMESTAMP: the zone must not shift it
        const src = source(dir, file, 'csv', { columns: { zone: 'INTEGER', fare: 'DOUBLE', cat: 'VARCHAR', drv: 'VARCHAR', ts: 'TIMESTAMP' } })
        const got = await computeVector(src, q, { countFiltered: true })
        const want = reference(rows, group, aggregates, filter)
        expect(Array.from(got.vector)).toEqual(Array.from(want.vector))
        expect(got.stats).toMatchObject(want.stats)
        // a run's statement (the filter as WHERE, no count of dropped rows): the same vector
        const asRun = await computeVector(src, q)
        expect(Array.from(asRun.vector)).toEqual(Array.from(want.vector))
        const { rows: _r, filtered: _f, ...rest } = want.stats
        expect(asRun.stats).toMatchObject({ ...rest, rows: null, filtered: null })
      }
    ), { numRuns: Number(process.env.FUZZ_RUNS ?? 60) })
  }, 60_000)
})
