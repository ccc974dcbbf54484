// Local diagnostics of the clean stage (negotiation.md §3.7) for `mpc-agent data preview`: what
// the cleaning did to this provider's own data for one query. Shown to its operator only; never
// sent, never logged (SECURITY.md "What stays local").
import type { Query } from '../query/types.ts'
import { columnsOf } from '../query/columns.ts'
import type { DatasetSource } from './source.ts'
import { quoteIdent } from './compile.ts'
import { withSource } from './engine.ts'
import { externalEngine } from './sources.ts'

export interface ColumnCleaning {
  column: string
  type: string
  /** CSV/JSON values present in the file that did not convert to the declared type: read as NULL. */
  unconvertible: number
  /** NaN values: read as NULL. */
  nan: number
  /** ±infinity: dates and timestamps read as NULL, numbers clipped by an aggregate's clip. */
  infinite: number
}

export interface CleaningReport {
  /** CSV/JSON lines the reader skipped (wrong number of fields, broken quoting, not JSON). */
  rejectedLines: number
  columns: ColumnCleaning[]
}

const FLOATING = /^(FLOAT|DOUBLE|REAL)$/
const TIMELIKE = /^(TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE|DATE)$/

export async function diagnoseCleaning(src: DatasetSource, q: Query): Promise<CleaningReport> {
  const ext = await externalEngine(src)
  if (ext) return ext.diagnose(src, q)
  const cols = columnsOf(q)
  const used = [...new Set([...cols.filter, ...cols.group_by, ...cols.aggregates])].sort()
  return withSource(src, q.timezone, async ({ c, raw, schema }) => {
    const declared = src.format === 'csv' || src.format === 'json'
    const present = used.filter((u) => schema.has(u))
    const parts: string[] = ['count(*)']
    for (const u of present) {
      const t = schema.get(u) as string
      const id = quoteIdent(u)
      const typed = declared && t !== 'VARCHAR' ? `TRY_CAST(${id} AS ${t})` : id
      parts.push(declared && t !== 'VARCHAR' ? `count(*) FILTER (WHERE ${id} IS NOT NULL AND ${typed} IS NULL)` : '0')
      parts.push(FLOATING.test(t) ? `count(*) FILTER (WHERE isnan(${typed}))` : '0')
      parts.push(FLOATING.test(t) || TIMELIKE.test(t) ? `count(*) FILTER (WHERE NOT isfinite(${typed}))` : '0')
    }
    const row = (await c.runAndReadAll(`SELECT ${parts.join(', ')} FROM ${raw}`)).getRows()[0] ?? []
    let rejectedLines = 0
    if (src.format === 'csv') {
      const r = await c.runAndReadAll('SELECT count(DISTINCT (file_id, line)) FROM reject_errors').catch(() => null)
      rejectedLines = Number(r?.getRows()[0]?.[0] ?? 0)
    }
    return {
      rejectedLines,
      columns: present.map((u, i) => ({
        column: u, type: schema.get(u) as string,
        unconvertible: Number(row[1 + 3 * i] ?? 0), nan: Number(row[2 + 3 * i] ?? 0), infinite: Number(row[3 + 3 * i] ?? 0)
      }))
    }
  }, undefined, { rejects: true })
}
