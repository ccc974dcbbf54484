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
import { quoteIdent } from './compile.ts'
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

/** The FROM clause reading a source; the caller detaches `cleanup` afterwards. */
async function openSource(c: DuckDBConnection, src: DatasetSource): Promise<{ from: string; detach?: string }> {
  if (!/[*?[]/.test(src.path) && !existsSync(src.path)) throw new DataError(`dataset "${src.name}": ${src.path} does not exist: fix datasets.${src.name}.path in config.yaml`)
  switch (src.format) {
    case 'parquet':
      return { from: `read_parquet(${str(src.path)})` }
    case 'json':
      return { from: `read_json_auto(${str(src.path)})` }
    case 'csv': {
      const cols = src.columns ? Object.entries(src.columns) : []
      const types = cols.length ? `, types = {${cols.map(([k, v]) => `${str(k)}: ${str(v)}`).join(', ')}}` : ''
      return { from: `read_csv(${str(src.path)}, header = true${types})` }
    }
    case 'duckdb': {
      const alias = `__mpc_src${++attached}`
      await c.run(`ATTACH ${str(src.path)} AS ${alias} (READ_ONLY)`)
      return { from: `${alias}.${quoteIdent(src.table ?? '')}`, detach: alias }
    }
  }
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

/** Run `f` on a fresh connection to the source, with the session time zone set to `timezone`. */
export async function withSource<T>(src: DatasetSource, timezone: string, f: (c: DuckDBConnection, from: string, icu: boolean) => Promise<T>, signal?: AbortSignal): Promise<T> {
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
    const s = await openSource(c, src)
    detach = s.detach
    return await f(c, s.from, icu)
  } catch (e) {
    if (signal?.aborted) throw cancelled()
    throw asDataError(src, e)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (detach) await c.run(`DETACH ${detach}`).catch(() => {})
    c.closeSync()
  }
}
