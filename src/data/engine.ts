// One in-memory DuckDB per process (creating one costs ~150 ms), a fresh connection per call.
// Spills go to a private temp directory that DuckDB creates only if it spills, removed on close
// and at exit: in the usual case nothing is ever written to disk.
// Sources are this provider's own config (never the query), quoted as SQL strings.
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api'
import { DataError } from './errors.ts'
import { quoteIdent, type Schema } from './compile.ts'
import type { DatasetSource } from './source.ts'

interface Engine {
  db: DuckDBInstance
  tmp: string
  /** Whether the ICU extension (time zones) is loaded in this build. */
  icu: boolean
}

let engine: Promise<Engine> | null = null
let attached = 0
const spillDirs = new Set<string>()
let exitHook = false

function cleanup(tmp: string): void {
  rmSync(tmp, { recursive: true, force: true })
}

async function open(): Promise<Engine> {
  const tmp = join(tmpdir(), `mpc-duckdb-${process.pid}-${randomBytes(6).toString('hex')}`)
  spillDirs.add(tmp)
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => spillDirs.forEach(cleanup))
  }
  const db = await DuckDBInstance.create(':memory:', { temp_directory: tmp, autoinstall_known_extensions: 'false' })
  const c = await db.connect()
  try {
    const r = await c.runAndReadAll(`SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'icu' AND loaded`)
    return { db, tmp, icu: Number(r.getRows()[0]?.[0] ?? 0) > 0 }
  } finally {
    c.closeSync()
  }
}

/** The spill directory of the shared instance (it exists only while DuckDB spills), or null. */
export async function engineTempDir(): Promise<string | null> {
  return engine ? (await engine).tmp : null
}

/** Close the shared instance (tests, shutdown); the next call opens a new one. */
export async function closeEngine(): Promise<void> {
  const e = engine
  engine = null
  if (!e) return
  const { db, tmp } = await e
  db.closeSync()
  cleanup(tmp)
  spillDirs.delete(tmp)
}

const str = (s: string): string => `'${s.replace(/'/g, "''")}'`

/** Is a path a glob (DuckDB's pattern characters)? */
export const isGlob = (path: string): boolean => /[*?[]/.test(path)

/**
 * The raw FROM clause reading a source; the caller detaches `detach` afterwards. CSV and JSON are
 * read with a fixed dialect and every declared column as text: nothing is sniffed from the values,
 * and no row value can make the read fail (a malformed CSV line is skipped, `rejects` counts it
 * when asked; negotiation.md §3.7).
 */
export async function openRaw(c: DuckDBConnection, src: DatasetSource, o: { rejects?: boolean } = {}): Promise<{ from: string; detach?: string }> {
  if (!isGlob(src.path) && !existsSync(src.path)) throw new DataError(`dataset "${src.name}": ${src.path} does not exist: fix datasets.${src.name}.path in config.yaml`)
  const text = (): string => `{${Object.keys(src.columns ?? {}).map((k) => `${str(k)}: 'VARCHAR'`).join(', ')}}`
  switch (src.format) {
    case 'parquet':
      return { from: `read_parquet(${str(src.path)})` }
    case 'json':
      return { from: `read_json(${str(src.path)}, format = 'newline_delimited', columns = ${text()}, ignore_errors = true, maximum_object_size = 16777216)` }
    case 'csv':
      return { from: `read_csv(${str(src.path)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', columns = ${text()}, ignore_errors = true${o.rejects ? ', store_rejects = true' : ''})` }
    case 'duckdb': {
      const alias = `__mpc_src${++attached}`
      await c.run(`ATTACH ${str(src.path)} AS ${alias} (READ_ONLY)`)
      return { from: `${alias}.${quoteIdent(src.table ?? '')}`, detach: alias }
    }
    case 'postgres':
      throw new DataError(`dataset "${src.name}": a postgres dataset is read by src/data/postgres.ts, not DuckDB`)
  }
}

/** Column types as declared (csv, json) or as the file's own metadata says (parquet footer, DuckDB catalog); reads no row. */
export async function rawSchema(c: DuckDBConnection, src: DatasetSource, raw: string): Promise<Schema> {
  if (src.format === 'csv' || src.format === 'json') {
    // DuckDB's own name for each declared type (INT → INTEGER, TIMESTAMPTZ → TIMESTAMP WITH TIME ZONE)
    const cols = Object.entries(src.columns ?? {})
    const r = await c.runAndReadAll(`SELECT ${cols.map(([, t]) => `typeof(CAST(NULL AS ${t}))`).join(', ')}`)
    const row = r.getRows()[0] ?? []
    return new Map(cols.map(([k], i) => [k, String(row[i])]))
  }
  const r = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${raw}`)
  return new Map(r.getRows().map((o) => [String(o[0]), String(o[1])]))
}

const FLOATING = /^(FLOAT|DOUBLE|REAL|FLOAT4|FLOAT8)$/
const TIMELIKE = /^(TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE|TIMESTAMPTZ|DATE)$/

/**
 * The clean stage (negotiation.md §3.7, step 1), as one projection over the raw source: declared
 * text columns converted with TRY_CAST (a value that does not convert is NULL), NaN → NULL, and
 * ±infinity dates and timestamps → NULL. Deterministic, row by row, and it cannot fail on a value.
 */
export function cleanFrom(src: DatasetSource, raw: string, schema: Schema): string {
  const declared = src.format === 'csv' || src.format === 'json'
  const exprs = [...schema].map(([name, type]) => {
    const id = quoteIdent(name)
    let e = declared && type !== 'VARCHAR' ? `TRY_CAST(${id} AS ${type})` : id
    if (FLOATING.test(type)) e = `CASE WHEN isnan(${e}) THEN NULL ELSE ${e} END`
    else if (TIMELIKE.test(type)) e = `CASE WHEN isfinite(${e}) THEN ${e} END`
    return `${e} AS ${id}`
  })
  return `(SELECT ${exprs.join(', ')} FROM ${raw}) AS __mpc_src`
}

/** A DuckDB error as one DataError line, with the fix where we know it. */
export function asDataError(src: DatasetSource, e: unknown): DataError {
  if (e instanceof DataError) return e
  const msg = ((e as Error).message ?? String(e)).split('\n')[0]?.trim() ?? ''
  const where = `dataset "${src.name}" (${src.path})`
  if (/No files found/i.test(msg)) return new DataError(`${where}: no file matches: fix datasets.${src.name}.path in config.yaml`)
  if (/^Conversion Error/i.test(msg) && src.format === 'csv') return new DataError(`${where}: ${msg}: declare the column's type under datasets.${src.name}.columns in config.yaml, or clean the file`)
  if (/^Catalog Error: Table/i.test(msg)) return new DataError(`${where}: ${msg}: fix datasets.${src.name}.table in config.yaml`)
  if (/COLUMN_TYPES/i.test(msg)) return new DataError(`${where}: ${msg}: fix datasets.${src.name}.columns in config.yaml`)
  return new DataError(`${where}: ${msg}`)
}

export interface Opened {
  c: DuckDBConnection
  /** The cleaned source (a parenthesised SELECT with an alias). */
  from: string
  /** The raw source (for local diagnostics). */
  raw: string
  schema: Schema
  icu: boolean
}

/** Run `f` on a fresh connection to the source, with the session time zone set to `timezone`. */
export async function withSource<T>(src: DatasetSource, timezone: string, f: (o: Opened) => Promise<T>, signal?: AbortSignal, opts: { rejects?: boolean } = {}): Promise<T> {
  const cancelled = (): DataError => new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)
  if (signal?.aborted) throw cancelled()
  engine ??= open()
  const { db, icu } = await engine
  const c = await db.connect()
  const onAbort = (): void => c.interrupt()
  signal?.addEventListener('abort', onAbort)
  let detach: string | undefined
  try {
    // string literals compared with a TIMESTAMPTZ column are read in the query's zone (negotiation.md §3.2)
    if (icu) await c.run(`SET TimeZone = ${str(timezone)}`)
    const s = await openRaw(c, src, opts)
    detach = s.detach
    const schema = await rawSchema(c, src, s.from)
    return await f({ c, from: cleanFrom(src, s.from, schema), raw: s.from, schema, icu })
  } catch (e) {
    if (signal?.aborted) throw cancelled()
    throw asDataError(src, e)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (detach) await c.run(`DETACH ${detach}`).catch(() => {})
    c.closeSync()
  }
}
