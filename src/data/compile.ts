// The agreed query → one DuckDB statement over this provider's source (negotiation.md §3.2–3.5).
// Identifiers are checked against the dataset's schema and quoted; every value that came from the
// query (filter literals, domain bounds, categories, bin edges, clip, scale, timezone) is a bound
// parameter, never SQL text. Each record's cell index is computed in SQL; rows outside a domain get
// a NULL cell and are counted, never silently mixed in.
import type { ColumnRef, Domain, FilterExpr, Literal, Query } from '../query/types.ts'
import { domainSize, layoutOf } from '../query/layout.ts'
import { DataError } from './errors.ts'

export interface Compiled {
  sql: string
  params: unknown[]
  /** Per output column of the statement, after `cell` and `rows`: what it holds. */
  outputs: Array<{ kind: 'value'; slot: number } | { kind: 'nulls' | 'nans' | 'clipped'; aggregate: string }>
}

export type Schema = Map<string, string>

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*)$/
const TEMPORAL = /^(TIMESTAMP.*|DATE)$/

class Builder {
  readonly params: unknown[] = []
  readonly schema: Schema
  readonly q: Query
  constructor(q: Query, schema: Schema) {
    this.q = q
    this.schema = schema
  }
  p(v: unknown): string {
    this.params.push(v)
    return `$${this.params.length}`
  }
  typeOf(column: string, role: string): string {
    const t = this.schema.get(column)
    if (!t) throw new DataError(`column "${column}" (used in ${role}) is not in dataset "${this.q.dataset}" (columns: ${[...this.schema.keys()].join(', ')})`)
    return t
  }
  col(column: string, role: string): string {
    this.typeOf(column, role)
    return quoteIdent(column)
  }
  /** A timestamp column as wall time in the query's timezone. */
  time(column: string, role: string): string {
    const t = this.typeOf(column, role)
    if (!TEMPORAL.test(t)) throw new DataError(`column "${column}" has type ${t}; ${role} needs a TIMESTAMP or DATE column`)
    // TIMESTAMPTZ is an instant: convert to the query's zone; a naive TIMESTAMP is already wall time there
    return t.startsWith('TIMESTAMP WITH TIME ZONE') ? `timezone(${this.p(this.q.timezone)}, ${quoteIdent(column)})` : quoteIdent(column)
  }
  ref(r: ColumnRef, role: string): { sql: string; type: string } {
    if (!r.fn) return { sql: this.col(r.column, role), type: this.typeOf(r.column, role) }
    const t = this.time(r.column, role)
    if (r.fn === 'hour') return { sql: `hour(${t})`, type: 'BIGINT' }
    if (r.fn === 'dow') return { sql: `isodow(${t})`, type: 'BIGINT' }
    return { sql: `CAST(${t} AS DATE)`, type: 'DATE' }
  }
  lit(v: Literal, type: string): string {
    if (v === null) return 'NULL'
    if (typeof v === 'string' && !/^(VARCHAR|TEXT|STRING)/.test(type)) {
      // a string compared with a typed column is cast to the column's type, e.g. '2024-03-01' to DATE
      return `CAST(${this.p(v)} AS ${type.replace(/[^A-Z0-9_ (),]/g, '')})`
    }
    return this.p(v)
  }
  filter(e: FilterExpr): string {
    switch (e.op) {
      case 'and':
      case 'or':
        return `(${e.args.map((a) => this.filter(a)).join(e.op === 'and' ? ' AND ' : ' OR ')})`
      case 'not':
        return `(NOT ${this.filter(e.arg)})`
      case 'cmp': {
        const r = this.ref(e.ref, 'the filter')
        if (e.value === null) return e.cmp === '=' ? `(${r.sql} IS NULL)` : e.cmp === '!=' ? `(${r.sql} IS NOT NULL)` : 'FALSE'
        const op = e.cmp === '!=' ? '<>' : e.cmp
        return `(${r.sql} ${op} ${this.lit(e.value, r.type)})`
      }
      case 'in': {
        const r = this.ref(e.ref, 'the filter')
        return `(${r.sql} ${e.negated ? 'NOT IN' : 'IN'} (${e.values.map((v) => this.lit(v, r.type)).join(', ')}))`
      }
      case 'between': {
        const r = this.ref(e.ref, 'the filter')
        return `(${r.sql} ${e.negated ? 'NOT BETWEEN' : 'BETWEEN'} ${this.lit(e.low, r.type)} AND ${this.lit(e.high, r.type)})`
      }
      case 'is_null': {
        const r = this.ref(e.ref, 'the filter')
        return `(${r.sql} IS ${e.negated ? 'NOT ' : ''}NULL)`
      }
    }
  }
  /** 0-based index within the domain, NULL outside it. */
  index(d: Domain): string {
    switch (d.kind) {
      case 'int_range': {
        const r = this.ref(d.ref, 'group_by')
        if (!NUMERIC.test(r.type) && r.type !== 'BIGINT') throw new DataError(`group_by column "${d.ref.column}" has type ${r.type}; an int_range needs a number`)
        const min = this.p(d.min)
        return `CASE WHEN ${r.sql} >= ${min} AND ${r.sql} <= ${this.p(d.max)} AND ${r.sql} = floor(${r.sql}) THEN CAST(${r.sql} - ${min} AS BIGINT) END`
      }
      case 'categories': {
        const r = this.ref(d.ref, 'group_by')
        return `CASE ${r.sql} ${d.values.map((v, i) => `WHEN ${this.lit(v, r.type)} THEN ${i}`).join(' ')} END`
      }
      case 'bins': {
        const r = this.ref(d.ref, 'group_by')
        if (!NUMERIC.test(r.type)) throw new DataError(`group_by column "${d.ref.column}" has type ${r.type}; bins need a number`)
        const e = d.edges.map((x) => this.p(x))
        const [lo, hi] = d.closed === 'left' ? ['>=', '<'] : ['>', '<=']
        return `CASE ${e.slice(0, -1).map((x, i) => `WHEN ${r.sql} ${lo} ${x} AND ${r.sql} ${hi} ${e[i + 1]} THEN ${i}`).join(' ')} END`
      }
      case 'hour_of_day':
        return `hour(${this.time(d.column, 'group_by')})`
      case 'day_of_week':
        return `(isodow(${this.time(d.column, 'group_by')}) - 1)`
      case 'date': {
        const days = domainSize(d)
        const idx = `date_diff('day', CAST(${this.p(d.from)} AS DATE), CAST(${this.time(d.column, 'group_by')} AS DATE))`
        return `CASE WHEN ${idx} BETWEEN 0 AND ${days - 1} THEN ${idx} END`
      }
    }
  }
}

export function compileQuery(q: Query, schema: Schema, from: string): Compiled {
  const b = new Builder(q, schema)
  const dims = q.group_by.map((g) => g.domain)
  const idx = dims.map((d) => b.index(d))
  const sizes = dims.map(domainSize)
  // row-major: cell = Σ idx_d · Π_{e>d} size_e  (negotiation.md §3.4)
  const strides = sizes.map((_, d) => sizes.slice(d + 1).reduce((a, x) => a * x, 1))
  const cell = idx.length === 0 ? '0' : idx.map((x, d) => `(${x}) * ${strides[d]}`).join(' + ')
  const where = q.filter ? `WHERE ${b.filter(q.filter)}` : ''
  const selects: string[] = []
  const outputs: Compiled['outputs'] = []
  let slot = 0
  for (const a of q.aggregates) {
    if (a.kind === 'count') {
      selects.push('count(*)')
      outputs.push({ kind: 'value', slot: slot++ })
      continue
    }
    const t = b.typeOf(a.column, `aggregate "${a.name}"`)
    const c = quoteIdent(a.column)
    if (a.kind === 'count_distinct') {
      selects.push(`count(DISTINCT ${c})`)
      outputs.push({ kind: 'value', slot: slot++ })
      continue
    }
    if (!NUMERIC.test(t)) throw new DataError(`column "${a.column}" has type ${t}; aggregate "${a.name}" (${a.kind}) needs a number`)
    const v = `CAST(${c} AS DOUBLE)`
    const lo = b.p(a.clip[0])
    const hi = b.p(a.clip[1])
    // clip, scale, round half away from zero (DuckDB's round on DOUBLE), sum exactly as HUGEINT
    // (DuckDB's greatest/least skip NULLs, so a NULL must be kept NULL explicitly)
    selects.push(`sum(CASE WHEN ${c} IS NOT NULL THEN CAST(round(least(greatest(${v}, ${lo}), ${hi}) * ${b.p(a.scale)}) AS HUGEINT) END)`)
    outputs.push({ kind: 'value', slot: slot++ })
    if (a.kind === 'mean') {
      selects.push(`count(${c})`)
      outputs.push({ kind: 'value', slot: slot++ })
    }
    selects.push(`count(*) FILTER (WHERE ${c} IS NULL)`, `count(*) FILTER (WHERE isnan(${v}))`, `count(*) FILTER (WHERE ${v} < ${lo} OR ${v} > ${hi})`)
    outputs.push({ kind: 'nulls', aggregate: a.name }, { kind: 'nans', aggregate: a.name }, { kind: 'clipped', aggregate: a.name })
  }
  if (slot !== layoutOf(q).slots.length) throw new Error('internal: slot count mismatch')
  const sql = `SELECT __mpc_cell, count(*) AS __mpc_rows${selects.map((s, i) => `, ${s} AS o${i}`).join('')}
FROM (SELECT *, ${cell} AS __mpc_cell FROM ${from} ${where}) AS t
GROUP BY __mpc_cell`
  return { sql, params: b.params, outputs }
}
