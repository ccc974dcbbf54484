// Strict validation of the canonical Query as it travels inside a signed proposal
// (protocols/negotiation.md §3). Providers run this on what they receive: nothing is trusted by
// shape. Also the query's digests: the query itself, and its template (the same question
// regardless of who is asked), which the differencing defence compares.
import type { Aggregate, ColumnRef, Domain, FilterExpr, GroupBy, Literal, PrivacyUnit, Query, QueryPrivacy } from './types.ts'
import { MAX_SIGMA, MECHANISM, noiseBounds } from './privacy.ts'
import { QueryError } from './errors.ts'
import { MAX_VECTOR_LENGTH, fixedPoint, layoutOf } from './layout.ts'
import { MAX_COLUMN_LENGTH, MAX_FILTER_DEPTH, MAX_IN_VALUES, MAX_LITERAL_LENGTH, UNPRINTABLE } from './filter.ts'
import { canonicalBytes } from '../crypto/canonical.ts'
import { labelledHash } from '../crypto/hash.ts'
import { comparePeers, parsePeer } from '../crypto/peer.ts'

export const LIMITS = {
  groupBy: 4,
  aggregates: 16,
  categories: 10_000,
  bins: 10_000,
  dateDays: 3660,
  providers: 100,
  maxRows: 1e12,
  maxScale: 1e9,
  maxTimeoutS: 3600
} as const

const ID = /^[a-z0-9._-]{1,64}$/ // formats.md
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const DATE = /^\d{4}-\d{2}-\d{2}$/
// UNPRINTABLE (control and bidi-override characters) is refused in every string: a proposal's text
// reaches operators' terminals and approval prompts, where it could forge lines or hide text.

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export class Validator {
  readonly where: string
  /** Maps a canonical path to the one the user wrote (query files flatten group_by domains). */
  readonly rename: (path: string) => string
  constructor(where: string, rename: (path: string) => string = (p) => p) {
    this.where = where
    this.rename = rename
  }
  fail(path: string, msg: string): never {
    throw new QueryError(`${this.where}: ${this.rename(path)}: ${msg}`)
  }
  obj(v: unknown, path: string, keys: string[], required: string[] = keys): Obj {
    if (!isObj(v)) this.fail(path, 'expected a mapping')
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail(path, `unknown key "${k}" (allowed: ${keys.join(', ')})`)
    for (const k of required) if (v[k] === undefined) this.fail(path, `missing "${k}"`)
    return v
  }
  str(v: unknown, path: string, max = 200, re?: RegExp): string {
    if (typeof v !== 'string' || v.length === 0 || v.length > max) this.fail(path, `expected a non-empty string of at most ${max} characters`)
    if (UNPRINTABLE.test(v)) this.fail(path, 'control or bidi-override characters are not allowed')
    if (re && !re.test(v)) this.fail(path, `"${v.slice(0, 40)}" does not match ${re.source}`)
    return v
  }
  int(v: unknown, path: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(path, `expected an integer in ${min}..${max}`)
    return v + 0 // -0 → 0: JSON cannot carry -0, so the wire round trip must not depend on it
  }
  num(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'expected a finite number')
    return v + 0
  }
  arr(v: unknown, path: string, min: number, max: number): unknown[] {
    if (!Array.isArray(v) || v.length < min || v.length > max) this.fail(path, `expected a list of ${min}..${max} entries`)
    return v
  }
  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(path, `expected one of ${values.join(', ')}`)
    return v as T
  }
  column(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_COLUMN_LENGTH || v.includes('"') || UNPRINTABLE.test(v)) {
      this.fail(path, `expected a column name (1-${MAX_COLUMN_LENGTH} characters, no double quotes or control characters)`)
    }
    return v
  }
  peer(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'expected a peer ID')
    try {
      return parsePeer(v).id
    } catch (e) {
      return this.fail(path, (e as Error).message)
    }
  }
}

function ref(c: Validator, v: unknown, path: string): ColumnRef {
  const o = c.obj(v, path, ['column', 'fn'], ['column'])
  const r: ColumnRef = { column: c.column(o.column, `${path}.column`) }
  if (o.fn !== undefined) r.fn = c.oneOf(o.fn, `${path}.fn`, ['hour', 'dow', 'date'] as const)
  return r
}

function literal(c: Validator, v: unknown, path: string): Literal {
  if (v === null || typeof v === 'boolean') return v
  if (typeof v === 'number') return c.num(v, path)
  if (typeof v === 'string' && v.length <= MAX_LITERAL_LENGTH && !UNPRINTABLE.test(v)) return v
  return c.fail(path, `expected a literal (number, string ≤ ${MAX_LITERAL_LENGTH} printable characters, boolean, null)`)
}

function filter(c: Validator, v: unknown, path: string, depth = 0): FilterExpr {
  if (depth > MAX_FILTER_DEPTH) c.fail(path, `nested deeper than ${MAX_FILTER_DEPTH}`)
  if (!isObj(v)) c.fail(path, 'expected a filter node')
  switch (v.op) {
    case 'and':
    case 'or': {
      const o = c.obj(v, path, ['op', 'args'])
      return { op: v.op, args: c.arr(o.args, `${path}.args`, 2, 1000).map((a, i) => filter(c, a, `${path}.args[${i}]`, depth + 1)) }
    }
    case 'not': {
      const o = c.obj(v, path, ['op', 'arg'])
      return { op: 'not', arg: filter(c, o.arg, `${path}.arg`, depth + 1) }
    }
    case 'cmp': {
      const o = c.obj(v, path, ['op', 'cmp', 'ref', 'value'])
      return { op: 'cmp', cmp: c.oneOf(o.cmp, `${path}.cmp`, ['=', '!=', '<', '<=', '>', '>='] as const), ref: ref(c, o.ref, `${path}.ref`), value: literal(c, o.value, `${path}.value`) }
    }
    case 'in': {
      const o = c.obj(v, path, ['op', 'ref', 'values', 'negated'])
      if (typeof o.negated !== 'boolean') c.fail(`${path}.negated`, 'expected a boolean')
      return { op: 'in', ref: ref(c, o.ref, `${path}.ref`), values: c.arr(o.values, `${path}.values`, 1, MAX_IN_VALUES).map((x, i) => literal(c, x, `${path}.values[${i}]`)), negated: o.negated }
    }
    case 'between': {
      const o = c.obj(v, path, ['op', 'ref', 'low', 'high', 'negated'])
      if (typeof o.negated !== 'boolean') c.fail(`${path}.negated`, 'expected a boolean')
      return { op: 'between', ref: ref(c, o.ref, `${path}.ref`), low: literal(c, o.low, `${path}.low`), high: literal(c, o.high, `${path}.high`), negated: o.negated }
    }
    case 'is_null': {
      const o = c.obj(v, path, ['op', 'ref', 'negated'])
      if (typeof o.negated !== 'boolean') c.fail(`${path}.negated`, 'expected a boolean')
      return { op: 'is_null', ref: ref(c, o.ref, `${path}.ref`), negated: o.negated }
    }
    default:
      return c.fail(`${path}.op`, 'unknown filter operator')
  }
}

function validDate(s: string): boolean {
  return DATE.test(s) && new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s
}

function domain(c: Validator, v: unknown, path: string): Domain {
  if (!isObj(v)) c.fail(path, 'expected a domain')
  switch (v.kind) {
    case 'int_range': {
      const o = c.obj(v, path, ['kind', 'ref', 'min', 'max'])
      const min = c.int(o.min, `${path}.min`, -(2 ** 53) + 1, 2 ** 53 - 1)
      const max = c.int(o.max, `${path}.max`, min, 2 ** 53 - 1)
      return { kind: 'int_range', ref: ref(c, o.ref, `${path}.ref`), min, max }
    }
    case 'categories': {
      const o = c.obj(v, path, ['kind', 'ref', 'values'])
      const values = c.arr(o.values, `${path}.values`, 1, LIMITS.categories).map((x, i) => {
        if (typeof x === 'number') return c.num(x, `${path}.values[${i}]`)
        return c.str(x, `${path}.values[${i}]`, 200)
      })
      if (new Set(values.map((x) => `${typeof x}:${x}`)).size !== values.length) c.fail(`${path}.values`, 'values must be distinct')
      return { kind: 'categories', ref: ref(c, o.ref, `${path}.ref`), values }
    }
    case 'bins': {
      const o = c.obj(v, path, ['kind', 'ref', 'edges', 'closed'])
      const edges = c.arr(o.edges, `${path}.edges`, 2, LIMITS.bins + 1).map((x, i) => c.num(x, `${path}.edges[${i}]`))
      for (let i = 1; i < edges.length; i++) if ((edges[i] as number) <= (edges[i - 1] as number)) c.fail(`${path}.edges`, 'edges must increase strictly')
      return { kind: 'bins', ref: ref(c, o.ref, `${path}.ref`), edges, closed: c.oneOf(o.closed, `${path}.closed`, ['left', 'right'] as const) }
    }
    case 'hour_of_day':
    case 'day_of_week': {
      const o = c.obj(v, path, ['kind', 'column'])
      return { kind: v.kind, column: c.column(o.column, `${path}.column`) }
    }
    case 'date': {
      const o = c.obj(v, path, ['kind', 'column', 'from', 'to'])
      const from = c.str(o.from, `${path}.from`, 10)
      const to = c.str(o.to, `${path}.to`, 10)
      if (!validDate(from) || !validDate(to)) c.fail(path, 'from/to must be dates YYYY-MM-DD')
      const days = (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1
      if (days < 1 || days > LIMITS.dateDays) c.fail(path, `from..to must span 1..${LIMITS.dateDays} days`)
      return { kind: 'date', column: c.column(o.column, `${path}.column`), from, to }
    }
    default:
      return c.fail(`${path}.kind`, 'expected int_range, categories, bins, hour_of_day, day_of_week or date')
  }
}

function aggregate(c: Validator, v: unknown, path: string): Aggregate {
  if (!isObj(v)) c.fail(path, 'expected an aggregate')
  const name = c.str(v.name, `${path}.name`, 64, NAME)
  switch (v.kind) {
    case 'count':
      c.obj(v, path, ['name', 'kind'])
      return { name, kind: 'count' }
    case 'count_distinct': {
      const o = c.obj(v, path, ['name', 'kind', 'column'])
      return { name, kind: 'count_distinct', column: c.column(o.column, `${path}.column`) }
    }
    case 'sum':
    case 'mean': {
      const o = c.obj(v, path, ['name', 'kind', 'column', 'scale', 'clip'])
      const scale = c.num(o.scale, `${path}.scale`)
      if (scale <= 0 || scale > LIMITS.maxScale) c.fail(`${path}.scale`, `must be in (0, ${LIMITS.maxScale}]`)
      const clip = c.arr(o.clip, `${path}.clip`, 2, 2).map((x, i) => c.num(x, `${path}.clip[${i}]`)) as [number, number]
      if (clip[0] > clip[1]) c.fail(`${path}.clip`, 'min must not exceed max')
      return { name, kind: v.kind, column: c.column(o.column, `${path}.column`), scale, clip }
    }
    default:
      return c.fail(`${path}.kind`, 'expected count, sum, mean or count_distinct')
  }
}

/** Everything of a Query except who takes part: what a query file fixes before names are resolved. */
export type QueryBody = Omit<Query, 'participants' | 'output'>

export const QUERY_KEYS = ['version', 'id', 'title', 'dataset', 'timezone', 'filter', 'group_by', 'aggregates', 'max_rows_per_provider', 'participants', 'min_providers', 'output', 'timeouts', 'privacy']

/**
 * The `privacy` section (negotiation.md §3.8). `noise` is required in a resolved query (validateQuery checks it
 * against the providers); a query file leaves it out and resolveQuery adds the buyer's plan.
 */
export function privacySection(c: Validator, v: unknown, slots: number): Omit<QueryPrivacy, 'noise'> & { noise?: QueryPrivacy['noise'] } {
  const o = c.obj(v, 'privacy', ['epsilon', 'delta', 'unit', 'suppress_below', 'noise'], ['epsilon', 'delta', 'unit'])
  const epsilon = c.num(o.epsilon, 'privacy.epsilon')
  if (!(epsilon > 0 && epsilon <= 100)) c.fail('privacy.epsilon', 'expected a number in (0, 100]')
  const delta = c.num(o.delta, 'privacy.delta')
  if (!(delta > 0 && delta < 1e-3)) c.fail('privacy.delta', 'expected a number in (0, 0.001)')
  let unit: PrivacyUnit
  if (o.unit === 'row') unit = 'row'
  else {
    const u = c.obj(o.unit, 'privacy.unit', ['column', 'max_cells', 'max_rows_per_cell'], ['column', 'max_cells'])
    unit = { column: c.column(u.column, 'privacy.unit.column'), max_cells: c.int(u.max_cells, 'privacy.unit.max_cells', 1, 1_000_000), max_rows_per_cell: c.int(u.max_rows_per_cell ?? 1, 'privacy.unit.max_rows_per_cell', 1, 1_000_000) }
  }
  const suppress_below = o.suppress_below === undefined || o.suppress_below === null ? null : c.int(o.suppress_below, 'privacy.suppress_below', 0, 1e12)
  if (o.noise === undefined) return { epsilon, delta, unit, suppress_below }
  const n = c.obj(o.noise, 'privacy.noise', ['mechanism', 'dishonest', 'sigmas'])
  const mechanism = c.oneOf(n.mechanism, 'privacy.noise.mechanism', [MECHANISM])
  const dishonest = c.int(n.dishonest, 'privacy.noise.dishonest', 0, LIMITS.providers)
  const sigmas = c.arr(n.sigmas, 'privacy.noise.sigmas', slots, slots).map((x, i) => c.int(x, `privacy.noise.sigmas[${i}]`, 1, MAX_SIGMA))
  return { epsilon, delta, unit, suppress_below, noise: { mechanism, dishonest, sigmas } }
}

let canonicalZones: Set<string> | null = null
/** Aliases Intl accepted in this process (UTC, the default, is one: ~0.2 ms per DateTimeFormat); bounded. */
const acceptedAliases = new Set<string>()

/**
 * Whether Intl accepts `tz` as a time zone. The canonical IANA names are listed first (~2 ms once per
 * process here); a DateTimeFormat's first zone lookup costs ~15 ms, a tenth of a cron job's query run
 * start-up (issue 20), so only aliases (UTC, US/Eastern, Etc/GMT+5) take that path, once each per process
 * (a serving provider validates every proposal). Same accepted set.
 */
function isTimeZone(tz: string): boolean {
  canonicalZones ??= new Set(Intl.supportedValuesOf('timeZone'))
  if (canonicalZones.has(tz) || acceptedAliases.has(tz)) return true
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    if (acceptedAliases.size < 256) acceptedAliases.add(tz)
    return true
  } catch {
    return false
  }
}

/** Validate the participant-independent part of a query object (keys other than these are ignored here). */
export function validateBody(c: Validator, o: Obj): QueryBody {
  if (o.version !== 1) c.fail('version', 'only version 1 is supported')
  const timezone = c.str(o.timezone, 'timezone', 64)
  if (!isTimeZone(timezone)) c.fail('timezone', `"${timezone}" is not an IANA time zone (e.g. UTC, America/New_York)`)
  const group_by: GroupBy[] = c.arr(o.group_by, 'group_by', 0, LIMITS.groupBy).map((g, i) => {
    const go = c.obj(g, `group_by[${i}]`, ['name', 'domain'])
    return { name: c.str(go.name, `group_by[${i}].name`, 64, NAME), domain: domain(c, go.domain, `group_by[${i}].domain`) }
  })
  const aggregates = c.arr(o.aggregates, 'aggregates', 1, LIMITS.aggregates).map((a, i) => aggregate(c, a, `aggregates[${i}]`))
  const names = [...group_by.map((g) => g.name), ...aggregates.map((a) => a.name)]
  if (new Set(names).size !== names.length) c.fail('group_by/aggregates', 'names of dimensions and aggregates must be distinct')
  const layout = layoutOf({ group_by, aggregates })
  if (layout.length > MAX_VECTOR_LENGTH) {
    c.fail('group_by', `${layout.cells} cells × ${layout.slots.length} slots = ${layout.length} values; at most ${MAX_VECTOR_LENGTH} are allowed: coarsen a dimension or drop an aggregate`)
  }
  const to = c.obj(o.timeouts, 'timeouts', ['negotiate_s', 'compute_s', 'confirm_s'])
  const privacy = o.privacy === undefined ? undefined : privacySection(c, o.privacy, layout.slots.length)
  return {
    ...(privacy ? { privacy: privacy as QueryPrivacy } : {}),
    version: 1,
    id: c.str(o.id, 'id', 64, ID),
    title: c.str(o.title, 'title', 200),
    dataset: c.str(o.dataset, 'dataset', 64, NAME),
    timezone,
    filter: o.filter === null ? null : filter(c, o.filter, 'filter'),
    group_by,
    aggregates,
    max_rows_per_provider: c.int(o.max_rows_per_provider, 'max_rows_per_provider', 1, LIMITS.maxRows),
    min_providers: c.int(o.min_providers, 'min_providers', 3, LIMITS.providers),
    timeouts: {
      negotiate_s: c.int(to.negotiate_s, 'timeouts.negotiate_s', 1, LIMITS.maxTimeoutS),
      compute_s: c.int(to.compute_s, 'timeouts.compute_s', 1, LIMITS.maxTimeoutS),
      confirm_s: c.int(to.confirm_s, 'timeouts.confirm_s', 1, LIMITS.maxTimeoutS)
    }
  }
}

/**
 * Strict validation of a canonical, resolved Query (negotiation.md §3): unknown keys, types,
 * limits, canonical provider order, and the overflow bound. validateQuery(JSON round trip of q)
 * deep-equals q.
 */
export function validateQuery(raw: unknown, where = 'query'): Query {
  const c = new Validator(where)
  const o = c.obj(raw, '(root)', QUERY_KEYS, QUERY_KEYS.filter((k) => k !== 'privacy'))
  const body = validateBody(c, o)
  const po = c.obj(o.participants, 'participants', ['buyer', 'providers'])
  const buyer = c.peer(po.buyer, 'participants.buyer')
  const providers = c.arr(po.providers, 'participants.providers', 3, LIMITS.providers).map((p, i) => c.peer(p, `participants.providers[${i}]`))
  for (let i = 1; i < providers.length; i++) {
    if (comparePeers(providers[i - 1] as string, providers[i] as string) >= 0) c.fail('participants.providers', 'must be distinct and in canonical order (multihash bytes)')
  }
  if (providers.includes(buyer)) c.fail('participants', 'the buyer cannot also be a provider')
  if (providers.length < body.min_providers) c.fail('participants.providers', `${providers.length} providers, fewer than min_providers ${body.min_providers}`)
  const output = c.arr(o.output, 'output', 1, LIMITS.providers + 1).map((p, i) => c.peer(p, `output[${i}]`))
  if (output[0] !== buyer) c.fail('output', 'must start with the buyer')
  for (const p of output.slice(1)) if (!providers.includes(p)) c.fail('output', `${p} is not a provider of this query`)
  if (new Set(output).size !== output.length) c.fail('output', 'entries must be distinct')
  if (body.privacy) {
    if (!body.privacy.noise) c.fail('privacy', 'missing "noise" (the buyer\'s noise plan)')
    if (body.privacy.noise.dishonest > providers.length - 1) c.fail('privacy.noise.dishonest', `expected at most ${providers.length - 1} (N − 1)`)
  }
  // honest totals must never wrap in Z_2^64 (masked-sum.md check 6): N · rows · max|clip·scale| + noise tail < 2^63
  const rows = BigInt(body.max_rows_per_provider) * BigInt(providers.length)
  const layout = layoutOf(body)
  const tails = noiseBounds(body.privacy, providers.length, layout.cells)
  let slot = 0
  for (const a of body.aggregates) {
    const first = slot
    slot += a.kind === 'mean' ? 2 : 1
    const tail = tails?.[first] ?? 0n
    if (a.kind !== 'sum' && a.kind !== 'mean') {
      if (rows + tail >= 1n << 63n) c.fail(`aggregates[${body.aggregates.indexOf(a)}]`, 'max_rows_per_provider plus the noise bound could overflow 2^63')
      continue
    }
    const m = [fixedPoint(a.clip[0], a.scale), fixedPoint(a.clip[1], a.scale)].map((x) => (x < 0n ? -x : x)).reduce((x, y) => (x > y ? x : y))
    if (rows * m + tail >= 1n << 63n) {
      c.fail(`aggregates[${body.aggregates.indexOf(a)}]`, `${providers.length} providers × max_rows_per_provider ${body.max_rows_per_provider} × |clip × scale| ${m} could overflow 2^63: lower max_rows_per_provider, the clip or the scale`)
    }
  }
  return { ...body, participants: { buyer, providers }, output }
}

export function queryDigest(q: Query): Uint8Array {
  return labelledHash('mpc-agent/query/v1', canonicalBytes(q))
}

/**
 * The question without who is asked, when, or what anything is called (id, title, dimension and
 * aggregate names), for display and the audit log only. No rule relies on it: renaming is not the
 * only way to change a digest without changing the numbers (differencing pins, negotiation.md §6.2).
 */
export function templateDigest(q: Query): Uint8Array {
  const { participants: _p, min_providers: _m, output: _o, timeouts: _t, id: _i, title: _ti, ...rest } = q
  const unnamed = {
    ...rest,
    group_by: rest.group_by.map(({ name: _n, ...g }) => g),
    aggregates: rest.aggregates.map(({ name: _n, ...a }) => a)
  }
  return labelledHash('mpc-agent/query-template/v1', canonicalBytes(unnamed))
}
