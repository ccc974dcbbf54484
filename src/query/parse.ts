// Query files (YAML or JSON) as buyers write them → the canonical Query (negotiation.md §3.1).
// The file form is friendlier (a filter string, flat group_by entries, participant names); it is
// converted to the canonical object, names are resolved to peer IDs locally (so every agent hashes
// the same bytes), and the result goes through the same strict validateQuery the providers run.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import type { Query } from './types.ts'
import { QueryError } from './errors.ts'
import { parseFilter } from './filter.ts'
import { Validator, validateQuery } from './validate.ts'
import { comparePeers } from '../crypto/peer.ts'

export const DEFAULTS = {
  out_of_domain: 'drop',
  max_rows_per_provider: 100_000_000,
  min_providers: 3,
  timeouts: { negotiate_s: 30, compute_s: 300, confirm_s: 30 }
} as const

/** A parsed query file whose participants are still names (or peer IDs). */
export interface QueryDraft {
  raw: Record<string, unknown>
  buyer: string | null
  providers: string[]
  output: string[]
  source: string
}

const FILE_KEYS = ['id', 'title', 'dataset', 'timezone', 'filter', 'group_by', 'aggregates', 'out_of_domain', 'max_rows_per_provider', 'participants', 'min_providers', 'output', 'timeouts']

export function parseQueryText(text: string, source: string): QueryDraft {
  let doc: unknown
  try {
    doc = parseYaml(text) // JSON is YAML
  } catch (e) {
    throw new QueryError(`${source}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`)
  }
  const c = new Validator(source)
  const o = c.obj(doc, '(root)', FILE_KEYS, ['id', 'title', 'dataset', 'aggregates', 'participants'])
  const group_by = (o.group_by === undefined ? [] : c.arr(o.group_by, 'group_by', 0, 4)).map((g, i) => {
    const path = `group_by[${i}]`
    const go = c.obj(g, path, ['name', 'kind', 'column', 'fn', 'min', 'max', 'values', 'edges', 'closed', 'from', 'to'], ['name', 'kind', 'column'])
    const refOf = (): Record<string, unknown> => (go.fn === undefined ? { column: go.column } : { column: go.column, fn: go.fn })
    const only = (keys: string[]): void => {
      for (const k of Object.keys(go)) if (!['name', 'kind', 'column', ...keys].includes(k)) c.fail(path, `"${k}" does not apply to kind ${String(go.kind)}`)
    }
    switch (go.kind) {
      case 'int_range':
        only(['fn', 'min', 'max'])
        return { name: go.name, domain: { kind: 'int_range', ref: refOf(), min: go.min, max: go.max } }
      case 'categories':
        only(['fn', 'values'])
        return { name: go.name, domain: { kind: 'categories', ref: refOf(), values: go.values } }
      case 'bins':
        only(['fn', 'edges', 'closed'])
        return { name: go.name, domain: { kind: 'bins', ref: refOf(), edges: go.edges, closed: go.closed ?? 'left' } }
      case 'hour_of_day':
      case 'day_of_week':
        only([])
        return { name: go.name, domain: { kind: go.kind, column: go.column } }
      case 'date':
        only(['from', 'to'])
        return { name: go.name, domain: { kind: 'date', column: go.column, from: dateString(go.from), to: dateString(go.to) } }
      default:
        return c.fail(`${path}.kind`, 'expected int_range, categories, bins, hour_of_day, day_of_week or date')
    }
  })
  const aggregates = c.arr(o.aggregates, 'aggregates', 1, 16).map((a, i) => {
    const ao = c.obj(a, `aggregates[${i}]`, ['name', 'kind', 'column', 'scale', 'clip', 'nulls'], ['name', 'kind'])
    if (ao.kind === 'sum' || ao.kind === 'mean') return { scale: 1, nulls: 'skip', ...ao }
    return ao
  })
  let filter: unknown = null
  if (o.filter !== undefined && o.filter !== null) filter = parseFilter(c.str(o.filter, 'filter', 4096))
  const po = c.obj(o.participants, 'participants', ['buyer', 'providers'], ['providers'])
  const providers = c.arr(po.providers, 'participants.providers', 1, 100).map((p, i) => c.str(p, `participants.providers[${i}]`, 100))
  const output = (o.output === undefined ? ['buyer'] : c.arr(o.output, 'output', 1, 101)).map((p, i) => c.str(p, `output[${i}]`, 100))
  const raw: Record<string, unknown> = {
    version: 1,
    id: o.id,
    title: o.title,
    dataset: o.dataset,
    timezone: o.timezone ?? 'UTC',
    filter,
    group_by,
    aggregates,
    out_of_domain: o.out_of_domain ?? DEFAULTS.out_of_domain,
    max_rows_per_provider: o.max_rows_per_provider ?? DEFAULTS.max_rows_per_provider,
    min_providers: o.min_providers ?? DEFAULTS.min_providers,
    timeouts: { ...DEFAULTS.timeouts, ...(o.timeouts === undefined ? {} : c.obj(o.timeouts, 'timeouts', ['negotiate_s', 'compute_s', 'confirm_s'], [])) }
  }
  return { raw, buyer: po.buyer === undefined ? null : c.str(po.buyer, 'participants.buyer', 100), providers, output, source }
}

function dateString(v: unknown): unknown {
  // YAML turns an unquoted 2024-03-01 into a Date
  return v instanceof Date ? v.toISOString().slice(0, 10) : v
}

/** Resolve names to peer IDs (the buyer defaults to `self`) and validate the canonical query. */
export function resolveQuery(d: QueryDraft, self: string, resolve: (nameOrId: string) => string | undefined): Query {
  const must = (x: string, path: string): string => {
    const id = resolve(x)
    if (!id) throw new QueryError(`${d.source}: ${path}: "${x}" is neither a configured peer nor a peer ID: \`mpc-agent peers add ${x} MULTIADDR --role provider\``)
    return id
  }
  const buyer = d.buyer == null ? self : must(d.buyer, 'participants.buyer')
  const providers = d.providers.map((p, i) => must(p, `participants.providers[${i}]`))
  if (new Set(providers).size !== providers.length) throw new QueryError(`${d.source}: participants.providers: a provider is listed twice`)
  providers.sort(comparePeers)
  const output = d.output.map((p, i) => (p === 'buyer' ? buyer : must(p, `output[${i}]`)))
  const ordered = [buyer, ...output.filter((p) => p !== buyer)]
  return validateQuery({ ...d.raw, participants: { buyer, providers }, output: [...new Set(ordered)] }, d.source)
}

export function loadQueryFile(path: string, self: string, resolve: (nameOrId: string) => string | undefined): Query {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new QueryError(`cannot read query file ${path}: check the path`)
  }
  return resolveQuery(parseQueryText(text, path), self, resolve)
}
