// Datasets a provider exposes under logical names (config.yaml `datasets:`), each a local
// CSV / Parquet / JSON file or glob, a table in a DuckDB database file, or a table in PostgreSQL
// (src/data/postgres.ts: the aggregation runs in the database).
import { isAbsolute, resolve } from 'node:path'
import { DataError } from './errors.ts'

export type DatasetFormat = 'csv' | 'parquet' | 'json' | 'duckdb' | 'postgres'

export interface DatasetSource {
  name: string
  /** Absolute path or glob. */
  path: string
  format: DatasetFormat
  /** duckdb: the table to read. */
  table?: string
  /**
   * csv, json (required): every column of the file, in file order, with its DuckDB type. Types are
   * declared, never sniffed (sniffing reads values); a value that fails conversion becomes NULL.
   */
  columns?: Record<string, string>
  /** postgres: the table's schema (default: the role's search_path). */
  schema?: string
  /** postgres: where the connection string is (never in config.yaml): an environment variable or a 0600 file. */
  connection?: { env: string } | { file: string }
}

const FORMATS: readonly DatasetFormat[] = ['csv', 'parquet', 'json', 'duckdb']
/** A DuckDB type name such as INTEGER, TIMESTAMP WITH TIME ZONE, DECIMAL(18,3). */
const TYPE = /^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$/

export function validateDatasets(raw: Record<string, unknown>, homeDir: string): Record<string, DatasetSource> {
  const out: Record<string, DatasetSource> = {}
  for (const [name, v] of Object.entries(raw)) {
    const where = `config.yaml datasets.${name}`
    const fix = `: fix datasets.${name} in config.yaml`
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(`${where}: expected {path, format}${fix}`)
    const o = v as Record<string, unknown>
    if (o.format === 'postgres') {
      out[name] = validatePostgres(name, o, homeDir)
      continue
    }
    for (const k of Object.keys(o)) if (!['path', 'format', 'table', 'columns'].includes(k)) throw new DataError(`${where}: unknown key "${k}" (allowed: path, format, table, columns)${fix}`)
    if (typeof o.path !== 'string' || !o.path) throw new DataError(`${where}: path must be a file path or glob${fix}`)
    const format = (o.format ?? inferFormat(o.path)) as DatasetFormat
    if (!FORMATS.includes(format)) throw new DataError(`${where}: format must be one of ${FORMATS.join(', ')}${fix}`)
    const src: DatasetSource = { name, path: isAbsolute(o.path) ? o.path : resolve(homeDir, o.path), format }
    if (format === 'duckdb') {
      if (typeof o.table !== 'string' || !o.table) throw new DataError(`${where}: a duckdb dataset needs table: NAME${fix}`)
      src.table = o.table
    } else if (o.table !== undefined) throw new DataError(`${where}: table applies only to format duckdb${fix}`)
    if (o.columns === undefined && (format === 'csv' || format === 'json')) {
      throw new DataError(`${where}: a ${format} dataset needs columns: {NAME: TYPE, ...} listing every column in file order (types are declared, never guessed from the values)${fix}`)
    }
    if (o.columns !== undefined) {
      if (format !== 'csv' && format !== 'json') throw new DataError(`${where}: columns (declared types) apply only to csv and json; parquet and duckdb carry their own types${fix}`)
      if (typeof o.columns !== 'object' || o.columns === null || Array.isArray(o.columns)) throw new DataError(`${where}: columns must map column names to DuckDB types${fix}`)
      if (Object.keys(o.columns).length === 0) throw new DataError(`${where}: columns must list at least one column${fix}`)
      for (const [c, t] of Object.entries(o.columns)) {
        if (typeof t !== 'string' || !TYPE.test(t)) throw new DataError(`${where}: columns.${c}: not a DuckDB type name${fix}`)
        if (c.includes('"') || c.length === 0) throw new DataError(`${where}: columns.${c}: a column name must be non-empty and contain no double quote${fix}`)
      }
      src.columns = o.columns as Record<string, string>
    }
    out[name] = src
  }
  return out
}

function inferFormat(path: string): string {
  const m = /\.(csv|parquet|json|ndjson|jsonl|duckdb|db)$/i.exec(path)
  const ext = m?.[1]?.toLowerCase()
  return ext === 'ndjson' || ext === 'jsonl' ? 'json' : ext === 'db' ? 'duckdb' : ext ?? ''
}

export function datasetFor(sources: Record<string, DatasetSource>, name: string): DatasetSource {
  const s = Object.hasOwn(sources, name) ? sources[name] : undefined
  if (!s) throw new DataError(`dataset "${name}" is not configured: add it under datasets: in config.yaml (configured: ${Object.keys(sources).join(', ') || 'none'})`)
  return s
}

const PG_KEYS = ['format', 'table', 'schema', 'connection_env', 'connection_file', 'columns']

/** `{ format: postgres, table, schema?, connection_env | connection_file, columns? }`: never a password here. */
function validatePostgres(name: string, o: Record<string, unknown>, homeDir: string): DatasetSource {
  const where = `config.yaml datasets.${name}`
  const fix = `: fix datasets.${name} in config.yaml`
  for (const k of Object.keys(o)) if (!PG_KEYS.includes(k)) throw new DataError(`${where}: unknown key "${k}" for a postgres dataset (allowed: ${PG_KEYS.join(', ')})${fix}`)
  if (typeof o.table !== 'string' || !o.table) throw new DataError(`${where}: a postgres dataset needs table: NAME${fix}`)
  if (o.schema !== undefined && (typeof o.schema !== 'string' || !o.schema)) throw new DataError(`${where}: schema must be a schema name${fix}`)
  const hasEnv = o.connection_env !== undefined
  const hasFile = o.connection_file !== undefined
  if (hasEnv === hasFile) throw new DataError(`${where}: a postgres dataset needs exactly one of connection_env: VARIABLE or connection_file: PATH (a 0600 file holding the connection string); never put a password in config.yaml${fix}`)
  let connection: DatasetSource['connection']
  if (hasEnv) {
    if (typeof o.connection_env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.connection_env)) throw new DataError(`${where}: connection_env must name an environment variable${fix}`)
    connection = { env: o.connection_env }
  } else {
    if (typeof o.connection_file !== 'string' || !o.connection_file) throw new DataError(`${where}: connection_file must be a file path${fix}`)
    connection = { file: isAbsolute(o.connection_file) ? o.connection_file : resolve(homeDir, o.connection_file) }
  }
  const src: DatasetSource = { name, format: 'postgres', table: o.table, connection, path: `postgres:${'env' in connection ? `$${connection.env}` : connection.file}/${o.schema ? `${o.schema}.` : ''}${o.table}` }
  if (typeof o.schema === 'string') src.schema = o.schema
  if (o.columns !== undefined) {
    if (typeof o.columns !== 'object' || o.columns === null || Array.isArray(o.columns) || Object.keys(o.columns).length === 0) throw new DataError(`${where}: columns must map column names to types${fix}`)
    for (const [c, t] of Object.entries(o.columns)) if (typeof t !== 'string' || !TYPE.test(t)) throw new DataError(`${where}: columns.${c}: not a type name${fix}`)
    src.columns = o.columns as Record<string, string>
  }
  return src
}
