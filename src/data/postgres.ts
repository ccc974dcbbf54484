// A dataset in PostgreSQL (issue 19): the agreed query compiled to ONE parameterised GROUP BY that
// runs inside the firm's database, so only one row per non-empty cell reaches the agent. Same
// pipeline and bit-identical semantics as the DuckDB path (negotiation.md §3.2–3.7):
// - clean: NaN → NULL (float and numeric), ±infinity dates and timestamps → NULL, text read with
//   COLLATE "C" (byte order, as DuckDB; also for DISTINCT), all in one projection;
// - identifiers are quoted, every value of the query is a bound parameter with an explicit type;
// - fixed point: clip, × scale in float8, then half away from zero computed explicitly on the float8
//   product (Postgres round(float8) breaks ties to even; float8 → numeric keeps 15 digits): trunc(p)
//   plus sign(p) when |p − trunc(p)| ≥ 0.5 (both exact in binary64), cast to bigint (exact: the
//   query model keeps |clip × scale| < 2^63), summed as numeric (exact);
// - time: timestamptz read AT TIME ZONE the query's zone, a naive timestamp taken as wall time there,
//   the session TimeZone set to the query's zone for literals;
// - the rows fold into the vector through compute.ts's CellFolder (counts, cleaning counts, per-cell clamp), in
//   JS, exactly as for DuckDB.
// The connection string comes from an environment variable or a 0600 file, never config.yaml. Every
// statement runs read-only under a statement_timeout; an aborted run cancels its statement.
import { statSync, readFileSync } from 'node:fs'
import pg from 'pg'
import type { Aggregate, Domain, Literal, Query } from '../query/types.ts'
import { domainSize, layoutOf } from '../query/layout.ts'
import { columnsOf } from '../query/columns.ts'
import { DataError } from './errors.ts'
import type { DatasetSource } from './source.ts'
import { Builder, filteredBranch, NUMERIC, quoteIdent, rowKey, type Output, type Schema } from './compile.ts'
import { CellFolder, type ComputeOptions, type VectorStats } from './compute.ts'
import type { SchemaReason } from './check.ts'
import type { CleaningReport } from './diagnose.ts'
import type { Inspection, SourceEngine } from './sources.ts'

/** Statement timeout of metadata reads (inspect, check). */
const META_TIMEOUT_MS = 30_000

/** The connection string, from the environment or a file only its owner can read. */
export function connectionString(src: DatasetSource): string {
  const c = src.connection
  if (!c) throw new DataError(`dataset "${src.name}": no connection configured: fix datasets.${src.name} in config.yaml`)
  if ('env' in c) {
    const v = process.env[c.env]
    if (!v) throw new DataError(`dataset "${src.name}": the environment variable ${c.env} (datasets.${src.name}.connection_env) is not set: export the connection string in it`)
    return v
  }
  let st
  try {
    st = statSync(c.file)
  } catch {
    throw new DataError(`dataset "${src.name}": ${c.file} (datasets.${src.name}.connection_file) does not exist`)
  }
  if ((st.mode & 0o077) !== 0) throw new DataError(`dataset "${src.name}": ${c.file} holds a connection string and is readable by others: chmod 600 ${c.file}`)
  const v = readFileSync(c.file, 'utf8').trim()
  if (!v) throw new DataError(`dataset "${src.name}": ${c.file} is empty: write the connection string in it`)
  return v
}

/** A Postgres type (format_type) under the DuckDB name the shared compiler checks against. */
export function duckName(pgType: string): string {
  const t = pgType.toLowerCase()
  const num = /^numeric\((\d+),(\d+)\)$/.exec(t)
  // a numeric that may exceed float8's range (or underflow it) would fail the cast to float8 on a row
  // value: not usable as a number (schema_mismatch at acceptance); declare numeric(p,s) with p ≤ 300
  if (num) return Number(num[1]) <= 300 && Number(num[2]) <= 300 ? `DECIMAL(${num[1]},${num[2]})` : 'NUMERIC (UNBOUNDED)'
  if (t === 'numeric') return 'NUMERIC (UNBOUNDED)'
  if (/^(character varying|character|text|varchar|bpchar|name)(\(\d+\))?$/.test(t)) return 'VARCHAR'
  if (/^timestamp(\(\d\))? without time zone$/.test(t)) return 'TIMESTAMP'
  if (/^timestamp(\(\d\))? with time zone$/.test(t)) return 'TIMESTAMP WITH TIME ZONE'
  const fixed: Record<string, string> = { smallint: 'SMALLINT', integer: 'INTEGER', bigint: 'BIGINT', real: 'FLOAT', 'double precision': 'DOUBLE', boolean: 'BOOLEAN', date: 'DATE' }
  return fixed[t] ?? t.toUpperCase()
}

/** The Postgres type a string literal compared with a column of DuckDB type `t` is cast to. */
function pgTypeOf(t: string, pgTypes: Map<string, string>, column?: string): string {
  const own = column ? pgTypes.get(column) : undefined
  if (own) return own
  const fixed: Record<string, string> = { BIGINT: 'bigint', DATE: 'date', VARCHAR: 'text' }
  return fixed[t] ?? 'text'
}

const SAFE_TYPE = /^[a-z][a-z0-9_ ]*(\(\d+(,\d+)?\))?( with(out)? time zone)?$/

interface PgSchema {
  /** Schema-qualified, quoted table name from the catalog. */
  from: string
  schema: Schema
  pgTypes: Map<string, string>
}

/** The table's columns from the catalog (pg_catalog), read without reading a row. */
async function readSchema(c: pg.Client, src: DatasetSource): Promise<PgSchema> {
  const name = `${src.schema ? `${quoteIdent(src.schema)}.` : ''}${quoteIdent(src.table ?? '')}`
  const rel = await c.query<{ oid: number | null; nsp: string | null; rel: string | null; ok: boolean | null }>(
    `SELECT c.oid::int AS oid, n.nspname AS nsp, c.relname AS rel, has_table_privilege(c.oid, 'SELECT') AS ok
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)`, [name])
  const r = rel.rows[0]
  if (!r || r.nsp === null || r.rel === null) throw new DataError(`dataset "${src.name}": table ${src.schema ? `${src.schema}.` : ''}${src.table} does not exist in the database: fix datasets.${src.name}.table in config.yaml`)
  if (!r.ok) throw new DataError(`dataset "${src.name}": the database role may not SELECT from ${r.nsp}.${r.rel}: GRANT SELECT on it to the agent's role`)
  const cols = await c.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [r.oid])
  const schema: Schema = new Map()
  const pgTypes = new Map<string, string>()
  for (const { name: n, type } of cols.rows) {
    schema.set(n, duckName(type))
    if (SAFE_TYPE.test(type)) pgTypes.set(n, type)
  }
  return { from: `${quoteIdent(r.nsp)}.${quoteIdent(r.rel)}`, schema, pgTypes }
}

const FLOATING = /^(FLOAT|DOUBLE)$/
const TIMELIKE = /^(TIMESTAMP|TIMESTAMP WITH TIME ZONE|DATE)$/

/** The clean stage (negotiation.md §3.7, step 1) as one projection over the table. */
export function cleanFrom(table: string, schema: Schema): string {
  const exprs = [...schema].map(([name, type]) => {
    const id = quoteIdent(name)
    let e = id
    if (FLOATING.test(type)) e = `CASE WHEN ${id} = 'NaN'::float8 THEN NULL ELSE ${id} END`
    else if (type.startsWith('DECIMAL') || type.startsWith('NUMERIC')) e = `CASE WHEN ${id} = 'NaN'::numeric THEN NULL ELSE ${id} END`
    else if (TIMELIKE.test(type)) e = `CASE WHEN isfinite(${id}) THEN ${id} END`
    else if (type === 'VARCHAR') e = `CAST(${id} AS text) COLLATE "C"`
    return `${e} AS ${id}`
  })
  return `(SELECT ${exprs.join(', ')} FROM ${table}) AS __mpc_src`
}

type Param = string | number | boolean

/** The shared compiler's structure (filters, keys, domains), with Postgres spellings and typed parameters. */
class PgBuilder extends Builder {
  readonly values: Param[] = []
  readonly pgTypes: Map<string, string>
  constructor(q: Query, schema: Schema, pgTypes: Map<string, string>) {
    super(q, schema, true)
    this.pgTypes = pgTypes
  }
  override p(v: Param): string {
    this.values.push(v)
    return `$${this.values.length}::${typeof v === 'string' ? 'text' : typeof v === 'number' ? 'float8' : 'boolean'}`
  }
  override time(column: string, role: string): string {
    const t = this.typeOf(column, role)
    if (!TIMELIKE.test(t)) throw new DataError(`column "${column}" has type ${t}; ${role} applies a time function to it and needs a TIMESTAMP or DATE column`)
    if (t === 'TIMESTAMP WITH TIME ZONE') return `(${quoteIdent(column)} AT TIME ZONE ${this.p(this.q.timezone)})`
    return `CAST(${quoteIdent(column)} AS timestamp)`
  }
  override ref(r: { column: string; fn?: 'hour' | 'dow' | 'date' }, role: string): { sql: string; type: string } {
    if (!r.fn) {
      const type = this.typeOf(r.column, role)
      return { sql: type === 'VARCHAR' ? `${quoteIdent(r.column)} COLLATE "C"` : quoteIdent(r.column), type }
    }
    const t = this.time(r.column, role)
    if (r.fn === 'hour') return { sql: `CAST(extract(hour FROM ${t}) AS bigint)`, type: 'BIGINT' }
    if (r.fn === 'dow') return { sql: `CAST(extract(isodow FROM ${t}) AS bigint)`, type: 'BIGINT' }
    return { sql: `CAST(${t} AS date)`, type: 'DATE' }
  }
  private lastColumn: string | undefined
  override lit(v: Literal, type: string): string {
    if (v === null) return 'NULL'
    const fits = typeof v === 'string' || type === 'VARCHAR' || (typeof v === 'number' ? NUMERIC.test(type) : type === 'BOOLEAN')
    if (!fits) throw new DataError(`the ${typeof v} ${JSON.stringify(v).slice(0, 40)} cannot be compared with a column of type ${type} in dataset "${this.q.dataset}"`)
    if (type === 'VARCHAR') return this.p(String(v))
    if (typeof v === 'string') {
      const pgType = pgTypeOf(type, this.pgTypes, this.lastColumn)
      this.casts.push({ value: v, type: pgType })
      return `CAST(${this.p(v)} AS ${pgType})`
    }
    return this.p(v)
  }
  override filter(e: Parameters<Builder['filter']>[0]): string {
    if ('ref' in e) this.lastColumn = e.ref.fn ? undefined : e.ref.column
    return super.filter(e)
  }
  override index(d: Domain): string {
    switch (d.kind) {
      case 'hour_of_day':
        return `CAST(extract(hour FROM ${this.time(d.column, 'group_by')}) AS bigint)`
      case 'day_of_week':
        return `(CAST(extract(isodow FROM ${this.time(d.column, 'group_by')}) AS bigint) - 1)`
      case 'date': {
        const idx = `(CAST(${this.time(d.column, 'group_by')} AS date) - CAST(${this.p(d.from)} AS date))`
        return `CASE WHEN ${idx} BETWEEN 0 AND ${domainSize(d) - 1} THEN ${idx} END`
      }
      case 'categories':
        this.lastColumn = d.ref.fn ? undefined : d.ref.column
        return super.index(d)
      default:
        return super.index(d)
    }
  }
}

export interface PgCompiled {
  sql: string
  params: Param[]
  outputs: Output[]
  casts: Array<{ value: string; type: string }>
}

/** The agreed query as one Postgres statement over the cleaned table `from`. */
export function compilePostgres(q: Query, schema: Schema, pgTypes: Map<string, string>, from: string, o: { countFiltered?: boolean } = {}): PgCompiled {
  const b = new PgBuilder(q, schema, pgTypes)
  const { key, keep } = rowKey(b, q)
  const inputs: string[] = []
  const fixed: string[] = []
  const selects: string[] = []
  const outputs: Output[] = []
  let slot = 0
  q.aggregates.forEach((a: Aggregate, ai) => {
    if (a.kind === 'count') {
      selects.push('count(*)')
      outputs.push({ kind: 'value', slot: slot++ })
      return
    }
    const x = `__mpc_x${ai}`
    const t = b.typeOf(a.column, `aggregate "${a.name}"`)
    if (a.kind === 'count_distinct') {
      inputs.push(`${quoteIdent(a.column)} AS ${x}`)
      selects.push(`count(DISTINCT ${x})`)
      outputs.push({ kind: 'value', slot: slot++ })
      return
    }
    if (!NUMERIC.test(t)) throw new DataError(`column "${a.column}" has type ${t}; aggregate "${a.name}" (${a.kind}) needs a numeric column`)
    inputs.push(`CAST(${quoteIdent(a.column)} AS float8) AS ${x}`)
    const lo = b.p(a.clip[0])
    const hi = b.p(a.clip[1])
    const f = `__mpc_f${ai}`
    // clip, then × scale in binary64 (negotiation.md §3.5). Postgres raises an error when a product of
    // non-zero floats underflows to 0 (a row value must never fail the statement, §3.7): a clipped value
    // below 0.25 / scale in magnitude has a product below 0.5, whose fixed point is 0 on every engine
    const c = `(CASE WHEN ${x} < ${lo} THEN ${lo} WHEN ${x} > ${hi} THEN ${hi} ELSE ${x} END)`
    fixed.push(`CASE WHEN abs(${c}) < ${b.p(0.25 / a.scale)} THEN 0 ELSE ${c} * ${b.p(a.scale)} END AS ${f}`)
    // half away from zero, exactly: trunc and the fraction are exact in binary64
    selects.push(`coalesce(sum(CAST(trunc(${f}) + CASE WHEN abs(${f} - trunc(${f})) >= 0.5 THEN sign(${f}) ELSE 0 END AS bigint)), 0)`)
    outputs.push({ kind: 'value', slot: slot++ })
    if (a.kind === 'mean') {
      selects.push(`count(${x})`)
      outputs.push({ kind: 'value', slot: slot++ })
    }
    selects.push(`count(*) FILTER (WHERE ${x} IS NULL)`, `count(*) FILTER (WHERE ${x} < ${lo} OR ${x} > ${hi})`)
    outputs.push({ kind: 'nulls', aggregate: ai }, { kind: 'clipped', aggregate: ai })
  })
  if (slot !== layoutOf(q).slots.length) throw new Error('internal: slot count differs from the layout')
  const sql = `SELECT __mpc_key, count(*)${selects.map((s) => `, ${s}`).join('')}
FROM (SELECT *${fixed.map((s) => `, ${s}`).join('')} FROM (SELECT ${key} AS __mpc_key${inputs.map((s) => `, ${s}`).join('')} FROM ${from}${keep ? ` WHERE ${keep}` : ''}) AS __mpc_rows) AS __mpc_fixed
GROUP BY __mpc_key${o.countFiltered ? filteredBranch(from, keep, selects.length) : ''}`
  return { sql, params: b.values, outputs, casts: b.casts }
}

const cancelled = (src: DatasetSource): DataError => new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)

/** One error line without the connection string; the engine's message stays local. */
function asDataError(src: DatasetSource, e: unknown): DataError {
  if (e instanceof DataError) return e
  const msg = ((e as Error).message ?? String(e)).split('\n')[0]?.trim() ?? ''
  return new DataError(`dataset "${src.name}" (${src.path}): ${msg || 'the database could not be reached'}`)
}

interface Session {
  c: pg.Client
  t: PgSchema
}

/** Run `f` on a fresh read-only session with TimeZone = `timezone`; an abort cancels the running statement. */
async function withPg<T>(src: DatasetSource, timezone: string, timeoutMs: number, f: (s: Session) => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) throw cancelled(src)
  const conn = connectionString(src)
  const c = new pg.Client({ connectionString: conn, statement_timeout: timeoutMs, application_name: 'mpc-agent' })
  c.on('error', () => {})
  let pid: number | null = null
  const onAbort = (): void => {
    if (pid === null) return
    const k = new pg.Client({ connectionString: conn, application_name: 'mpc-agent cancel' })
    k.on('error', () => {})
    void k.connect().then(() => k.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid])).catch(() => {}).finally(() => void k.end().catch(() => {}))
  }
  signal?.addEventListener('abort', onAbort)
  try {
    await c.connect()
    const r = await c.query<{ pid: number }>(`SELECT pg_catalog.pg_backend_pid() AS pid, pg_catalog.set_config('TimeZone', $1, false), pg_catalog.set_config('default_transaction_read_only', 'on', false)`, [timezone])
    pid = r.rows[0]?.pid ?? null
    const t = await readSchema(c, src)
    // from here on every name is schema-qualified: nothing the search_path holds can shadow a function
    await c.query(`SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)`)
    if (signal?.aborted) throw cancelled(src)
    return await f({ c, t })
  } catch (e) {
    if (signal?.aborted) throw cancelled(src)
    throw asDataError(src, e)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await c.end().catch(() => {})
  }
}

const big = (v: unknown): bigint => (v === null || v === undefined ? 0n : BigInt(String(v)))

async function compute(src: DatasetSource, q: Query, opts: ComputeOptions): Promise<{ vector: BigUint64Array; stats: VectorStats }> {
  const t0 = performance.now()
  const vector = new BigUint64Array(layoutOf(q).length)
  try {
    return await withPg(src, q.timezone, q.timeouts.compute_s * 1000, async ({ c, t }) => {
      const countFiltered = opts.countFiltered === true
      const { sql, params, outputs } = compilePostgres(q, t.schema, t.pgTypes, cleanFrom(t.from, t.schema), { countFiltered })
      const fold = new CellFolder(q, outputs, vector, big, countFiltered)
      const res = await c.query({ text: sql, values: params, rowMode: 'array' })
      for (const row of res.rows as unknown[][]) {
        if (opts.signal?.aborted) throw cancelled(src)
        fold.add((i) => row[i])
      }
      return fold.finish(t0)
    }, opts.signal)
  } catch (e) {
    vector.fill(0n)
    throw e
  }
}

async function inspect(src: DatasetSource): Promise<Inspection> {
  return withPg(src, 'UTC', META_TIMEOUT_MS, async ({ c, t }) => {
    const n = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.from}`)
    return { columns: [...t.schema].map(([name]) => ({ name, type: t.pgTypes.get(name) ?? t.schema.get(name) ?? '' })), rows: Number(n.rows[0]?.n ?? 0) }
  })
}

async function check(src: DatasetSource, q: Query, provider: string): Promise<SchemaReason | null> {
  const unavailable = (local: string): SchemaReason => ({ code: 'dataset_unavailable', message: `dataset "${q.dataset}" is configured at ${provider} but cannot be read there (its operator must fix it)`.slice(0, 500), local })
  try {
    return await withPg(src, q.timezone, META_TIMEOUT_MS, async ({ c, t }) => {
      for (const [col, type] of Object.entries(src.columns ?? {})) {
        const got = t.schema.get(col)
        if (got === undefined || got.toUpperCase() !== duckName(type).toUpperCase()) return unavailable(`dataset "${src.name}": datasets.${src.name}.columns says ${col} is ${type}, the database has ${got === undefined ? 'no such column' : got}`)
      }
      // the statement is planned and run over no rows (WHERE FALSE: the table is not scanned)
      const empty = cleanFrom(`(SELECT * FROM ${t.from} WHERE FALSE) AS __mpc_none`, t.schema)
      let compiled
      try {
        compiled = compilePostgres(q, t.schema, t.pgTypes, empty)
      } catch (e) {
        if (!(e instanceof DataError)) throw e
        return { code: 'schema_mismatch', message: `${e.message} at ${provider}`.slice(0, 500), local: e.message }
      }
      for (const x of compiled.casts) {
        try {
          await c.query(`SELECT CAST($1::text AS ${x.type})`, [x.value])
        } catch {
          const m = `the literal "${x.value.slice(0, 40)}" cannot be read as ${x.type} (the type of the column it is compared with in dataset "${q.dataset}" at ${provider})`
          return { code: 'schema_mismatch', message: m.slice(0, 500), local: m }
        }
      }
      try {
        await c.query({ text: compiled.sql, values: compiled.params, rowMode: 'array' })
      } catch (e) {
        const first = ((e as Error).message ?? '').split('\n')[0] ?? ''
        return { code: 'schema_mismatch', message: `the query does not fit the column types of dataset "${q.dataset}" at ${provider}`, local: first }
      }
      return null
    })
  } catch (e) {
    return unavailable((e as Error).message)
  }
}

async function diagnose(src: DatasetSource, q: Query): Promise<CleaningReport> {
  const cols = columnsOf(q)
  const used = [...new Set([...cols.filter, ...cols.group_by, ...cols.aggregates])].sort()
  return withPg(src, q.timezone, META_TIMEOUT_MS, async ({ c, t }) => {
    const present = used.filter((u) => t.schema.has(u))
    const parts: string[] = ['count(*)']
    for (const u of present) {
      const ty = t.schema.get(u) as string
      const id = quoteIdent(u)
      parts.push('0')
      parts.push(FLOATING.test(ty) ? `count(*) FILTER (WHERE ${id} = 'NaN'::float8)` : ty.startsWith('DECIMAL') ? `count(*) FILTER (WHERE ${id} = 'NaN'::numeric)` : '0')
      // Postgres has isfinite() for dates and timestamps only
      parts.push(FLOATING.test(ty) ? `count(*) FILTER (WHERE ${id} IN ('Infinity'::float8, '-Infinity'::float8))` : ty.startsWith('DECIMAL') ? `count(*) FILTER (WHERE ${id} IN ('Infinity'::numeric, '-Infinity'::numeric))` : TIMELIKE.test(ty) ? `count(*) FILTER (WHERE NOT isfinite(${id}))` : '0')
    }
    const res = await c.query({ text: `SELECT ${parts.join(', ')} FROM ${t.from}`, rowMode: 'array' })
    const row = (res.rows[0] ?? []) as unknown[]
    return {
      rejectedLines: 0,
      columns: present.map((u, i) => ({ column: u, type: t.pgTypes.get(u) ?? (t.schema.get(u) as string), unconvertible: 0, nan: Number(row[2 + 3 * i] ?? 0), infinite: Number(row[3 + 3 * i] ?? 0) }))
    }
  })
}

export const postgresEngine: SourceEngine = { inspect, check, compute, diagnose }
