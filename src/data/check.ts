// The schema check at acceptance (negotiation.md §6.1): everything a provider can know about a
// proposal without reading a row — is the dataset configured and present, does every column exist
// with a usable type, does every literal of the query convert to its column's type — is decided
// BEFORE it signs, and answered as a rejection with a reason code. Only metadata is read: the
// declared `columns` of a CSV/JSON dataset (and the header line of each file, which names them),
// the Parquet footer, the DuckDB catalog. So no such problem can become an abort after signing.
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import type { Query } from '../query/types.ts'
import { DataError } from './errors.ts'
import type { DatasetSource } from './source.ts'
import { compileQuery, quoteIdent } from './compile.ts'
import { isGlob, withSource } from './engine.ts'
import { externalEngine } from './sources.ts'

/** Literal conversions checked per statement at acceptance. */
const CAST_BATCH = 256

export interface SchemaReason {
  code: 'dataset_unavailable' | 'schema_mismatch'
  /** Sent to the buyer: names columns and types of the query, never a path or a value of the data. */
  message: string
  /** Local only (log, `data preview`): may name paths. */
  local: string
}

/** The first line of a file (at most 64 KiB), without reading further. */
function headerLine(path: string): string {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(65_536)
    const n = readSync(fd, buf, 0, buf.length, 0)
    const text = buf.subarray(0, n).toString('utf8')
    const end = text.search(/\r?\n/)
    return (end < 0 ? text : text.slice(0, end)).replace(/^\uFEFF/, '')
  } finally {
    closeSync(fd)
  }
}

/** Split a CSV header line (comma, double quotes doubled inside quotes). */
export function splitHeader(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"'
        i++
      } else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',') {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  out.push(cur)
  return out.map((s) => s.trim())
}

/**
 * null if this provider can run `q` on `src` as far as metadata tells; otherwise why not. Never
 * throws for a problem of the dataset or the query (an unexpected error is `dataset_unavailable`).
 */
export async function checkDataset(src: DatasetSource, q: Query, provider: string): Promise<SchemaReason | null> {
  const key = passKey(src, q, provider)
  if (key !== null && passed.has(key)) return null
  checksRun++
  const reason = await checkUncached(src, q, provider)
  if (reason === null && key !== null) {
    if (passed.size >= PASSED_MAX) passed.delete(passed.values().next().value as string)
    passed.add(key)
  }
  return reason
}

// A cron job proposes the same query every hour over files that may not have changed: a check that
// passed is remembered for exactly that query, that dataset configuration and that file as it was,
// and done again when anything differs (7–19 ms of DuckDB per proposal otherwise, on the
// negotiation's critical path; bench/README.md). What identifies the file: device, inode, size,
// modification and change times (ns), and the bytes the check itself reads — a CSV's header line,
// a Parquet file's footer (its last 64 KiB) — so that a same-size rewrite in place within one tick of
// a coarse clock is still seen. Only single Parquet, CSV and JSON files: a glob can gain files, and a
// DuckDB table can be a view over other files, a database server's schema can change with no file
// changing, so those are checked every time. Only passes are kept, each as a SHA-256 of its key
// (a query can be large; 256 entries are ~20 KiB whatever the buyers send).
const PASSED_MAX = 256
const passed = new Set<string>()
let checksRun = 0

/** How many checks ran against the data so far in this process (not answered from a remembered pass). */
export function checksDone(): number {
  return checksRun
}

const FOOTER_BYTES = 65_536

function passKey(src: DatasetSource, q: Query, provider: string): string | null {
  if (!(src.format === 'parquet' || src.format === 'csv' || src.format === 'json') || isGlob(src.path)) return null
  try {
    const st = statSync(src.path, { bigint: true })
    const file = [String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs)]
    const h = createHash('sha256').update(JSON.stringify([provider, src, file, q]))
    if (src.format === 'csv') h.update(headerLine(src.path))
    if (src.format === 'parquet') h.update(tail(src.path, Number(st.size)))
    return h.digest('hex')
  } catch {
    return null // missing, unreadable, not representable: checked every time
  }
}

/** The last FOOTER_BYTES of a file (a Parquet footer is at its end). */
function tail(path: string, size: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const n = Math.min(size, FOOTER_BYTES)
    const buf = Buffer.alloc(n)
    readSync(fd, buf, 0, n, size - n)
    return buf
  } finally {
    closeSync(fd)
  }
}

async function checkUncached(src: DatasetSource, q: Query, provider: string): Promise<SchemaReason | null> {
  const unavailable = (local: string): SchemaReason => ({ code: 'dataset_unavailable', message: `dataset "${q.dataset}" is configured at ${provider} but cannot be read there (its operator must fix it)`.slice(0, 500), local })
  const ext = await externalEngine(src)
  if (ext) {
    // per-unit contribution bounding (privacy.md §3) is compiled for DuckDB only so far: a query
    // that needs it is refused before signing rather than run unbounded in another engine
    const unit = q.privacy?.unit
    if (unit !== undefined && unit !== 'row') {
      const message = `dataset "${q.dataset}" at ${provider} is a ${src.format} source, which cannot yet bound contributions per privacy unit (${unit.column}); use unit: row or a file dataset`.slice(0, 500)
      return { code: 'schema_mismatch', message, local: message }
    }
    return ext.check(src, q, provider)
  }
  try {
    return await withSource(src, q.timezone, async ({ c, schema, icu }) => {
      if (src.format === 'csv') {
        const files = isGlob(src.path) ? (await c.runAndReadAll(`SELECT file FROM glob('${src.path.replace(/'/g, "''")}') ORDER BY file`)).getRows().map((r) => String(r[0])) : [src.path]
        if (files.length === 0) return unavailable(`dataset "${src.name}": no file matches ${src.path}`)
        const want = [...schema.keys()]
        for (const f of files) {
          const got = splitHeader(headerLine(f))
          if (got.join('\u0000') !== want.join('\u0000')) {
            return unavailable(`dataset "${src.name}": ${f} has the columns [${got.join(', ')}] but datasets.${src.name}.columns in config.yaml declares [${want.join(', ')}]: list every column of the file, in file order`)
          }
        }
      }
      // the statement is bound over an empty relation of the same schema: type errors surface here, not after signing
      const empty = `(SELECT ${[...schema].map(([n, t]) => `CAST(NULL AS ${t}) AS ${quoteIdent(n)}`).join(', ')} WHERE FALSE) AS __mpc_empty`
      let compiled
      try {
        compiled = compileQuery(q, schema, empty, icu)
      } catch (e) {
        if (!(e instanceof DataError)) throw e
        // a REJECT reason carries at most 500 characters (negotiation.md §4)
        const message = `${e.message} at ${provider}`.slice(0, 500)
        return { code: 'schema_mismatch', message, local: e.local }
      }
      try {
        await c.runAndReadAll(compiled.sql, compiled.params, compiled.types)
      } catch (e) {
        const first = ((e as Error).message ?? '').split('\n')[0] ?? ''
        return { code: 'schema_mismatch', message: `the query does not fit the column types of dataset "${q.dataset}" at ${provider}`, local: first }
      }
      // every distinct (literal, type) once, CAST_BATCH per statement: a filter of 4096 characters can hold
      // ~2000 literals, and one statement each cost a buyer's proposal ~2000 DuckDB round trips before signing
      const casts = [...new Map(compiled.casts.map((x) => [`${x.type}\u0000${x.value}`, x])).values()]
      for (let i = 0; i < casts.length; i += CAST_BATCH) {
        const batch = casts.slice(i, i + CAST_BATCH)
        const r = await c.runAndReadAll(`SELECT ${batch.map((x, k) => `TRY_CAST($${k + 1} AS ${x.type}) IS NULL`).join(', ')}`, batch.map((x) => x.value))
        const row = r.getRows()[0] ?? []
        const x = batch[row.findIndex((v) => v === true)]
        if (x) {
          const m = `the literal "${x.value.slice(0, 40)}" cannot be read as ${x.type} (the type of the column it is compared with in dataset "${q.dataset}" at ${provider})`
          return { code: 'schema_mismatch', message: m.slice(0, 500), local: m }
        }
      }
      return null
    })
  } catch (e) {
    return unavailable((e as Error).message)
  }
}
