// Query files (YAML or JSON) as buyers write them → the canonical Query (negotiation.md §3.1).
// The file form is friendlier (a filter string, flat group_by entries, participant names, defaults);
// parseQueryText converts and validates everything that does not depend on who takes part, with
// error paths as written in the file; resolveQuery turns names into peer IDs locally (so every agent
// hashes the same bytes) and runs the same strict validateQuery the providers run.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import type { Query } from './types.ts'
import { QueryError } from './errors.ts'
import { parseFilter } from './filter.ts'
import { yamlErrorLine } from '../util/yaml-error.ts'
import { LIMITS, Validator, validateBody, validateQuery, type QueryBody } from './validate.ts'
import { comparePeers, parsePeer } from '../crypto/peer.ts'
import { layoutOf } from './layout.ts'
import { MECHANISM, planQuery } from './privacy.ts'

export const DEFAULTS = {
  timezone: 'UTC',
  max_rows_per_provider: 100_000_000,
  min_providers: 3,
  output: ['buyer'],
  timeouts: { negotiate_s: 30, compute_s: 300, confirm_s: 30 }
} as const

/** A validated query file whose participants and output are still names (or peer IDs). */
export interface QueryDraft extends QueryBody {
  participants: {
    /** null: the proposing agent itself. */
    buyer: string | null
    providers: string[]
  }
  /** Names or peer IDs; 'buyer' means the buyer. */
  output: string[]
  /** File name for error messages. */
  source: string
}

const FILE_KEYS = ['id', 'title', 'dataset', 'timezone', 'filter', 'group_by', 'aggregates', 'out_of_domain', 'max_rows_per_provider', 'participants', 'min_providers', 'output', 'timeouts', 'privacy']
const GROUP_KEYS = ['name', 'kind', 'column', 'fn', 'min', 'max', 'values', 'edges', 'closed', 'from', 'to']
const PER_KIND: Record<string, string[]> = {
  int_range: ['fn', 'min', 'max'],
  categories: ['fn', 'values'],
  bins: ['fn', 'edges', 'closed'],
  hour_of_day: [],
  day_of_week: [],
  date: ['from', 'to']
}

/** Canonical paths (group_by[i].domain.ref.column) as the file spells them (group_by[i].column). */
const filePath = (p: string): string => p.replace(/\.domain\.ref\b/g, '').replace(/\.domain\b/g, '')

function dateString(v: unknown): unknown {
  // YAML 1.1 schemas turn an unquoted 2024-03-01 into a Date
  return v instanceof Date ? v.toISOString().slice(0, 10) : v
}

function groupBy(c: Validator, g: unknown, path: string): unknown {
  const o = c.obj(g, path, GROUP_KEYS, ['name', 'kind', 'column'])
  const kind = typeof o.kind === 'string' ? o.kind : ''
  const allowed = PER_KIND[kind]
  if (!allowed) return c.fail(`${path}.kind`, 'expected int_range, categories, bins, hour_of_day, day_of_week or date')
  for (const k of Object.keys(o)) {
    if (!['name', 'kind', 'column', ...allowed].includes(k)) c.fail(path, `"${k}" does not apply to kind ${kind} (allowed: ${['name', 'kind', 'column', ...allowed].join(', ')})`)
  }
  const ref = o.fn === undefined ? { column: o.column } : { column: o.column, fn: o.fn }
  switch (kind) {
    case 'int_range':
      return { name: o.name, domain: { kind, ref, min: o.min, max: o.max } }
    case 'categories':
      return { name: o.name, domain: { kind, ref, values: o.values } }
    case 'bins':
      return { name: o.name, domain: { kind, ref, edges: o.edges, closed: o.closed ?? 'left' } }
    case 'date':
      return { name: o.name, domain: { kind, column: o.column, from: dateString(o.from), to: dateString(o.to) } }
    default:
      return { name: o.name, domain: { kind, column: o.column } }
  }
}

/**
 * `nulls` and `out_of_domain` left the query model (issue 14 §1): a buyer-chosen `fail` let a run
 * abort exactly when one provider's data held a NULL or an outlier. The one remaining value is
 * accepted and ignored, so older query files still parse; `fail` is refused with what to do instead.
 */
function legacyKey(c: Validator, v: unknown, path: string, only: string, why: string): void {
  if (v === undefined || v === only) return
  c.fail(path, `"${String(v)}" is no longer supported: ${why}; remove the key (a provider checks its own data with \`mpc-agent data preview\`)`)
}

function names(c: Validator, v: unknown, path: string, min: number, max: number): string[] {
  return c.arr(v, path, min, max).map((x, i) => c.str(x, `${path}[${i}]`, 100))
}

/** Parse and validate a query file; participants stay names until resolveQuery. */
export function parseQueryText(text: string, source: string): QueryDraft {
  let doc: unknown
  try {
    doc = parseYaml(text) // JSON is YAML 1.2
  } catch (e) {
    throw new QueryError(`${source}: not valid YAML or JSON: ${yamlErrorLine(e)}`)
  }
  const c = new Validator(source, filePath)
  const o = c.obj(doc, '(root)', FILE_KEYS, ['id', 'title', 'dataset', 'aggregates', 'participants'])
  const group_by = (o.group_by === undefined || o.group_by === null ? [] : c.arr(o.group_by, 'group_by', 0, LIMITS.groupBy)).map((g, i) => groupBy(c, g, `group_by[${i}]`))
  legacyKey(c, o.out_of_domain, 'out_of_domain', 'drop', 'rows outside a group_by domain are always dropped (negotiation.md §3.7)')
  const aggregates = c.arr(o.aggregates, 'aggregates', 1, LIMITS.aggregates).map((a, i) => {
    const { nulls, ...ao } = c.obj(a, `aggregates[${i}]`, ['name', 'kind', 'column', 'scale', 'clip', 'nulls'], ['name', 'kind'])
    legacyKey(c, nulls, `aggregates[${i}].nulls`, 'skip', 'NULL values are always skipped (negotiation.md §3.7)')
    return ao.kind === 'sum' || ao.kind === 'mean' ? { scale: 1, ...ao } : ao
  })
  let filter: unknown = null
  if (o.filter !== undefined && o.filter !== null) {
    const text = o.filter
    if (typeof text !== 'string') return c.fail('filter', 'expected a filter expression as a string, e.g. "trip_miles > 0"')
    try {
      filter = parseFilter(text)
    } catch (e) {
      throw new QueryError(`${source}: ${(e as Error).message}`)
    }
  }
  const timeouts = o.timeouts === undefined ? {} : c.obj(o.timeouts, 'timeouts', ['negotiate_s', 'compute_s', 'confirm_s'], [])
  const body = validateBody(c, {
    version: 1,
    id: o.id,
    title: o.title,
    dataset: o.dataset,
    timezone: o.timezone ?? DEFAULTS.timezone,
    filter,
    group_by,
    aggregates,
    max_rows_per_provider: o.max_rows_per_provider ?? DEFAULTS.max_rows_per_provider,
    min_providers: o.min_providers ?? DEFAULTS.min_providers,
    timeouts: { ...DEFAULTS.timeouts, ...timeouts },
    ...(o.privacy === undefined ? {} : { privacy: o.privacy })
  })
  if (body.privacy?.noise) c.fail('privacy.noise', 'the noise plan is computed by the agent from epsilon, delta and the providers; leave it out')
  const po = c.obj(o.participants, 'participants', ['buyer', 'providers'], ['providers'])
  const providers = names(c, po.providers, 'participants.providers', 1, LIMITS.providers)
  if (providers.length < body.min_providers) {
    c.fail('participants.providers', `${providers.length} listed, at least ${body.min_providers} needed (min_providers; never fewer than 3: with two, each could subtract its own data from the total)`)
  }
  return {
    ...body,
    participants: { buyer: po.buyer === undefined || po.buyer === null ? null : c.str(po.buyer, 'participants.buyer', 100), providers },
    output: o.output === undefined ? [...DEFAULTS.output] : names(c, o.output, 'output', 1, LIMITS.providers + 1),
    source
  }
}

function isPeerId(x: string): boolean {
  try {
    parsePeer(x)
    return true
  } catch {
    return false
  }
}

/**
 * Resolve names to peer IDs (a configured name first, else a literal peer ID passes through; the
 * buyer defaults to `self`), sort providers canonically and validate the resulting Query.
 */
export function resolveQuery(d: QueryDraft, self: string, resolve: (nameOrId: string) => string | undefined): Query {
  const { source, participants, output: outNames, ...body } = d
  const must = (x: string, path: string): string => {
    const id = resolve(x) ?? (isPeerId(x) ? x : undefined)
    if (id && !isPeerId(id)) throw new QueryError(`${source}: ${path}: "${x}" is configured with an invalid peer ID; fix the peer entry in config.yaml`)
    if (!id) throw new QueryError(`${source}: ${path}: "${x}" is neither a configured peer nor a peer ID: add it with \`mpc-agent peers add ${x} MULTIADDR --role provider\``)
    return id
  }
  const buyer = participants.buyer == null ? self : must(participants.buyer, 'participants.buyer')
  const providers = participants.providers.map((p, i) => must(p, `participants.providers[${i}]`))
  const seen = new Map<string, number>()
  providers.forEach((p, i) => {
    const j = seen.get(p)
    if (j !== undefined) throw new QueryError(`${source}: participants.providers[${i}]: "${participants.providers[i]}" is the same peer as participants.providers[${j}]: list each provider once`)
    seen.set(p, i)
  })
  const k = providers.indexOf(buyer)
  if (k >= 0) throw new QueryError(`${source}: participants.providers[${k}]: "${participants.providers[k]}" is the buyer; the buyer cannot also be a provider`)
  providers.sort(comparePeers)
  const output = outNames.map((p, i) => (p === 'buyer' ? buyer : must(p, `output[${i}]`)))
  const ordered = [...new Set([buyer, ...output])] // the buyer always receives the result, first
  if (body.privacy) {
    // the buyer's noise plan (privacy.md §4-5), signed with the query: t = N − 2 (the buyer with up to N − 2 providers)
    const dishonest = Math.max(0, providers.length - 2)
    let plan
    try {
      plan = planQuery(body, layoutOf(body).cells, body.privacy, providers.length, dishonest)
    } catch (e) {
      throw new QueryError(`${source}: privacy: ${(e as Error).message}: raise epsilon or delta, or ask fewer cells`)
    }
    body.privacy = { ...body.privacy, noise: { mechanism: MECHANISM, dishonest, sigmas: plan.sigmas } }
  }
  return validateQuery({ ...body, participants: { buyer, providers }, output: ordered }, source)
}

export function loadQueryFile(path: string, self: string, resolve: (nameOrId: string) => string | undefined): Query {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new QueryError(`cannot read query file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}): check the path`)
  }
  return resolveQuery(parseQueryText(text, path), self, resolve)
}
