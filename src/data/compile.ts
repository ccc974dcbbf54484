// The agreed query → one DuckDB statement over this provider's source (negotiation.md §3.2–3.5).
// Identifiers are checked against the dataset's schema (DESCRIBE) and quoted; every value that came
// from the query (filter literals, domain bounds, categories, bin edges, clip, scale, timezone) is a
// bound, typed parameter, never SQL text. One scan: the filter is the statement's WHERE, each row it
// keeps gets a key — its cell index, NULL when outside a domain — and DuckDB groups by that key, so only
// one row per key ever comes back to JS. Counting the rows the filter drops (a local diagnostic for
// `data preview`) adds a second branch under key -1; a run does not ask for it (issue 20: grouping and
// aggregating every dropped row cost ~40 % of the statement, rush hours over a day of trips).
import { BOOLEAN, DOUBLE, VARCHAR, type DuckDBType } from '@duckdb/node-api'
import type { Aggregate, ColumnRef, Domain, FilterExpr, Literal, Query } from '../query/types.ts'
import { domainSize, layoutOf } from '../query/layout.ts'
import { didYouMean } from '../util/suggest.ts'
import { DataError } from './errors.ts'

export type Schema = Map<string, string>

/** One column of the statement's output after `key` and `rows`. */
export type Output =
  | { kind: 'value'; slot: number }
  | { kind: 'nulls' | 'clipped'; aggregate: number }

export interface Compiled {
  sql: string
  params: Array<string | number | boolean>
  types: DuckDBType[]
  outputs: Output[]
  /** Query literals converted to a column's type: checked at acceptance (negotiation.md §6.1). */
  casts: LiteralCast[]
}

/** A string literal of the query read as a column's type (TRY_CAST: NULL if it does not convert). */
export interface LiteralCast {
  value: string
  type: string
}

/** Key of rows the filter drops (cells are ≥ 0, rows outside a domain have a NULL key). */
export const FILTERED = -1n

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

export const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\s*\d+\))$/
const TEXT = /^(VARCHAR|TEXT|STRING|CHAR|BPCHAR)/
const TEMPORAL = /^(TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE|DATE)$/

export class Builder {
  readonly params: Compiled['params'] = []
  readonly types: DuckDBType[] = []
  readonly casts: LiteralCast[] = []
  readonly schema: Schema
  readonly q: Query
  /** Whether DuckDB can convert between time zones (the ICU extension is loaded). */
  readonly icu: boolean
  constructor(q: Query, schema: Schema, icu = true) {
    this.q = q
    this.schema = schema
    this.icu = icu
  }
  /** A bound parameter with an explicit type (no INTEGER/BIGINT inference surprises). */
  p(v: string | number | boolean): string {
    this.params.push(v)
    this.types.push(typeof v === 'string' ? VARCHAR : typeof v === 'number' ? DOUBLE : BOOLEAN)
    return `$${this.params.length}`
  }
  typeOf(column: string, role: string): string {
    const t = this.schema.get(column)
    if (t === undefined) {
      const m = `column "${column}" (used in ${role}) is not in dataset "${this.q.dataset}"`
      // the suggestion names a column of the dataset: local only, never in the reason sent to the buyer
      throw new DataError(m, m + didYouMean(column, this.schema.keys()))
    }
    return t
  }
  /** A timestamp column as wall time in the query's timezone (negotiation.md §3.2). */
  time(column: string, role: string): string {
    const t = this.typeOf(column, role)
    if (!TEMPORAL.test(t)) throw new DataError(`column "${column}" has type ${t}; ${role} applies a time function to it and needs a TIMESTAMP or DATE column`)
    // TIMESTAMPTZ is an instant: convert it to the query's zone; a naive TIMESTAMP is taken as wall time there
    if (t !== 'TIMESTAMP WITH TIME ZONE') return quoteIdent(column)
    if (!this.icu) {
      if (!/^(UTC|Etc\/UTC|Etc\/GMT|GMT)$/.test(this.q.timezone)) throw new DataError(`column "${column}" is TIMESTAMPTZ and the query's time zone is ${this.q.timezone}, but this DuckDB build has no ICU extension to convert time zones: store the column as naive local TIMESTAMP or use a DuckDB build with ICU`)
      return `CAST(${quoteIdent(column)} AS TIMESTAMP)`
    }
    return `timezone(${this.p(this.q.timezone)}, ${quoteIdent(column)})`
  }
  ref(r: ColumnRef, role: string): { sql: string; type: string } {
    if (!r.fn) return { sql: quoteIdent(r.column), type: this.typeOf(r.column, role) }
    const t = this.time(r.column, role)
    if (r.fn === 'hour') return { sql: `hour(${t})`, type: 'BIGINT' }
    if (r.fn === 'dow') return { sql: `isodow(${t})`, type: 'BIGINT' }
    return { sql: `CAST(${t} AS DATE)`, type: 'DATE' }
  }
  /** A literal compared with a value of SQL type `type`, bound as a parameter. */
  lit(v: Literal, type: string): string {
    if (v === null) return 'NULL'
    // a literal whose kind cannot compare with the column is a schema_mismatch at acceptance,
    // never a cast that fails on the first row after signing (negotiation.md §6.1)
    const fits = typeof v === 'string' || TEXT.test(type) || (typeof v === 'number' ? NUMERIC.test(type) : type === 'BOOLEAN')
    if (!fits) throw new DataError(`the ${typeof v} ${JSON.stringify(v).slice(0, 40)} cannot be compared with a column of type ${type} in dataset "${this.q.dataset}"`)
    // text columns compare as text: 1 matches '1' (DuckDB would otherwise cast every cell to a number)
    if (TEXT.test(type)) return this.p(String(v))
    // a string compared with a typed value is cast to that type, e.g. '2024-03-01' to DATE; TRY_CAST
    // so the statement cannot fail after signing (the acceptance check refuses a literal that is NULL)
    if (typeof v === 'string') {
      this.casts.push({ value: v, type: sqlType(type) })
      return `TRY_CAST(${this.p(v)} AS ${sqlType(type)})`
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
        return `(${r.sql} ${e.cmp === '!=' ? '<>' : e.cmp} ${this.lit(e.value, r.type)})`
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
  numeric(r: { sql: string; type: string }, column: string, what: string): void {
    if (!NUMERIC.test(r.type)) throw new DataError(`group_by column "${column}" has type ${r.type}; ${what} needs a numeric column`)
  }
  /** 0-based index within the domain, NULL outside it (negotiation.md §3.3). */
  index(d: Domain): string {
    switch (d.kind) {
      case 'int_range': {
        const r = this.ref(d.ref, 'group_by')
        this.numeric(r, d.ref.column, 'an int_range')
        const min = this.p(d.min)
        return `CASE WHEN ${r.sql} >= ${min} AND ${r.sql} <= ${this.p(d.max)} AND ${r.sql} = floor(${r.sql}) THEN CAST(${r.sql} - ${min} AS BIGINT) END`
      }
      case 'categories': {
        const r = this.ref(d.ref, 'group_by')
        return `CASE ${d.values.map((v, i) => `WHEN ${r.sql} = ${this.lit(v, r.type)} THEN ${i}`).join(' ')} END`
      }
      case 'bins': {
        const r = this.ref(d.ref, 'group_by')
        this.numeric(r, d.ref.column, 'bins')
        const e = d.edges.map((x) => this.p(x))
        const [lo, hi] = d.closed === 'left' ? ['>=', '<'] : ['>', '<=']
        return `CASE ${e.slice(0, -1).map((x, i) => `WHEN ${r.sql} ${lo} ${x} AND ${r.sql} ${hi} ${e[i + 1]} THEN ${i}`).join(' ')} END`
      }
      case 'hour_of_day':
        return `hour(${this.time(d.column, 'group_by')})`
      case 'day_of_week':
        return `(isodow(${this.time(d.column, 'group_by')}) - 1)`
      case 'date': {
        const idx = `date_diff('day', CAST(${this.p(d.from)} AS DATE), CAST(${this.time(d.column, 'group_by')} AS DATE))`
        return `CASE WHEN ${idx} BETWEEN 0 AND ${domainSize(d) - 1} THEN ${idx} END`
      }
    }
  }
}

/** A DuckDB type name from DESCRIBE, reduced to characters that can only spell a type. */
function sqlType(t: string): string {
  return t.replace(/[^A-Za-z0-9_ (),]/g, '')
}

/**
 * The row key of a row the filter keeps — its cell index (row-major, negotiation.md §3.4), NULL outside a domain —
 * and the filter as a condition (NULL counts as false), or null without a filter. The condition's parameters are
 * bound once: the same text may appear twice in one statement.
 */
export function rowKey(b: Builder, q: Query): { key: string; keep: string | null } {
  const keep = q.filter ? `coalesce(${b.filter(q.filter)}, FALSE)` : null
  const dims = q.group_by.map((g) => g.domain)
  const sizes = dims.map(domainSize)
  const strides = sizes.map((_, d) => sizes.slice(d + 1).reduce((a, x) => a * x, 1))
  const key = dims.length === 0 ? '0' : dims.map((d, i) => `(${b.index(d)}) * ${strides[i]}`).join(' + ')
  return { key, keep }
}

/**
 * The statement's tail for the diagnostic count of rows the filter dropped: one more result row, key FILTERED,
 * its row count, NULL for every other output (CellFolder reads nothing else of it). Empty without a filter.
 */
export function filteredBranch(from: string, keep: string | null, outputs: number): string {
  return keep === null ? '' : `\nUNION ALL SELECT ${FILTERED}, count(*)${', NULL'.repeat(outputs)} FROM ${from} WHERE NOT ${keep}`
}

function aggregateInput(b: Builder, a: Exclude<Aggregate, { kind: 'count' }>): string {
  const t = b.typeOf(a.column, `aggregate "${a.name}"`)
  if (a.kind === 'count_distinct') return quoteIdent(a.column)
  if (!NUMERIC.test(t)) throw new DataError(`column "${a.column}" has type ${t}; aggregate "${a.name}" (${a.kind}) needs a numeric column`)
  return `CAST(${quoteIdent(a.column)} AS DOUBLE)`
}

/** Label of the bounding hashes (protocols/privacy.md §3; reference: src/privacy/bounding.ts). */
export const BOUND_LABEL = 'mpc-agent/privacy/bound/v1'

/**
 * Contribution bounding per privacy unit (negotiation.md §3.7 step 2, protocols/privacy.md §3), as the reference
 * boundContributions: per unit u (the unit column as text; rows whose unit is NULL are dropped), rank its cells c
 * by sha256(label ‖ 0x00 ‖ u ‖ 0x00 ‖ c) and keep the first max_cells; within a kept cell rank its rows by
 * sha256(… ‖ 0x00 ‖ row key) and keep the first max_rows_per_cell. The row key is the row's aggregate inputs as
 * text joined by 0x00 (rows with equal keys are interchangeable: they add the same values). Deterministic and
 * independent of row order. Rows the filter drops never reach it (the WHERE below it); rows outside every domain
 * are not ranked (they add nothing).
 */
function boundPerUnit(b: Builder, rows: string, unit: { column: string; max_cells: number; max_rows_per_cell: number }, _idx: number[], aggs: Aggregate[]): string {
  b.typeOf(unit.column, 'the privacy unit')
  const xs = aggs.map((a, i) => (a.kind === 'count' ? null : `coalesce(CAST(__mpc_x${i} AS VARCHAR), '')`)).filter((x): x is string => x !== null)
  const rk = xs.length ? `concat_ws(chr(0), ${xs.join(', ')})` : `''`
  const label = b.p(BOUND_LABEL)
  const cellHash = `sha256(${label} || chr(0) || __mpc_u || chr(0) || CAST(__mpc_key AS VARCHAR))`
  const rowHash = `sha256(${label} || chr(0) || __mpc_u || chr(0) || CAST(__mpc_key AS VARCHAR) || chr(0) || ${rk})`
  const matched = '(__mpc_key >= 0)'
  const withUnit = rows.replace(/^SELECT /, `SELECT CAST(${quoteIdent(unit.column)} AS VARCHAR) AS __mpc_u, `)
  return `SELECT * EXCLUDE (__mpc_u, __mpc_cr, __mpc_rn) FROM (
  SELECT *,
    dense_rank() OVER (PARTITION BY __mpc_u, ${matched} ORDER BY ${cellHash}) AS __mpc_cr,
    row_number() OVER (PARTITION BY __mpc_u, __mpc_key ORDER BY ${rowHash}) AS __mpc_rn
  FROM (${withUnit}) AS __mpc_in
) AS __mpc_ranked
WHERE NOT coalesce(${matched}, FALSE) OR (__mpc_u IS NOT NULL AND __mpc_cr <= ${unit.max_cells} AND __mpc_rn <= ${unit.max_rows_per_cell})`
}

/**
 * `countFiltered`: also count the rows the filter drops (VectorStats.filtered; `data preview`), at the cost of a
 * second branch. The vector is the same either way (test/data/property.test.ts).
 */
export function compileQuery(q: Query, schema: Schema, from: string, icu = true, o: { countFiltered?: boolean } = {}): Compiled {
  const b = new Builder(q, schema, icu)
  const { key, keep } = rowKey(b, q)
  const inputs: string[] = []
  const selects: string[] = []
  const outputs: Output[] = []
  let slot = 0
  q.aggregates.forEach((a, ai) => {
    if (a.kind === 'count') {
      selects.push('count(*)')
      outputs.push({ kind: 'value', slot: slot++ })
      return
    }
    const x = `__mpc_x${ai}`
    inputs.push(`${aggregateInput(b, a)} AS ${x}`)
    if (a.kind === 'count_distinct') {
      selects.push(`count(DISTINCT ${x})`)
      outputs.push({ kind: 'value', slot: slot++ })
      return
    }
    const lo = b.p(a.clip[0])
    const hi = b.p(a.clip[1])
    // negotiation.md §3.5: clip (a CASE, since DuckDB's greatest/least skip NULLs), then × scale in
    // binary64, round half away from zero (round on DOUBLE is C's round), summed exactly as HUGEINT
    const clipped = `CASE WHEN ${x} < ${lo} THEN ${lo} WHEN ${x} > ${hi} THEN ${hi} ELSE ${x} END`
    selects.push(`sum(CAST(round(${clipped} * ${b.p(a.scale)}) AS HUGEINT))`)
    outputs.push({ kind: 'value', slot: slot++ })
    if (a.kind === 'mean') {
      selects.push(`count(${x})`)
      outputs.push({ kind: 'value', slot: slot++ })
    }
    // local diagnostics (never sent): NULLs skipped (NaN and failed conversions are NULL by now), values clipped
    selects.push(`count(*) FILTER (WHERE ${x} IS NULL)`, `count(*) FILTER (WHERE ${x} < ${lo} OR ${x} > ${hi})`)
    outputs.push({ kind: 'nulls', aggregate: ai }, { kind: 'clipped', aggregate: ai })
  })
  if (slot !== layoutOf(q).slots.length) throw new Error('internal: slot count differs from the layout')
  let rows = `SELECT ${key} AS __mpc_key${inputs.map((s) => `, ${s}`).join('')} FROM ${from}${keep ? ` WHERE ${keep}` : ''}`
  const unit = q.privacy?.unit
  if (unit !== undefined && unit !== 'row') rows = boundPerUnit(b, rows, unit, [], q.aggregates)
  const sql = `SELECT __mpc_key, count(*)${selects.map((s) => `, ${s}`).join('')}
FROM (${rows}) AS __mpc_rows
GROUP BY __mpc_key${o.countFiltered ? filteredBranch(from, keep, selects.length) : ''}`
  return { sql, params: b.params, types: b.types, outputs, casts: b.casts }
}
