// This provider's vector for an agreed query, computed by DuckDB over its local source
// (negotiation.md §3.4–3.5). DuckDB scans once and aggregates; only one row per non-empty cell
// comes back to JS, chunk by chunk, so memory is bounded by the number of cells, not rows.
// Statistics and error messages stay local: they may describe the data.
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import type { Query } from '../query/types.ts'
import { layoutOf, slotBounds } from '../query/layout.ts'
import { DataError } from './errors.ts'
import type { DatasetSource } from './source.ts'
import { compileOutOfDomain, compileQuery, FILTERED, type Schema } from './compile.ts'
import { withSource } from './engine.ts'

export { closeEngine } from './engine.ts'

export interface VectorStats {
  /** Rows in the source. */
  rows: number
  /** Rows that passed the filter and fell inside every domain. */
  matched: number
  /** Rows the filter dropped. */
  filtered: number
  /** Aggregate values clipped (over all sum/mean aggregates). */
  clipped: number
  /** Rows that passed the filter but fell outside a domain (dropped). */
  outOfDomain: number
  /** NULL values skipped by sum/mean aggregates. */
  nullsSkipped: number
  ms: number
}

async function schemaOf(c: DuckDBConnection, from: string): Promise<Schema> {
  const r = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`)
  return new Map(r.getRows().map((o) => [String(o[0]), String(o[1])]))
}

export async function inspectDataset(src: DatasetSource): Promise<{ columns: Array<{ name: string; type: string }>; rows: number }> {
  return withSource(src, 'UTC', async (c, from) => {
    const schema = await schemaOf(c, from)
    const n = await c.runAndReadAll(`SELECT count(*) FROM ${from}`)
    return { columns: [...schema].map(([name, type]) => ({ name, type })), rows: Number(n.getRows()[0]?.[0] ?? 0) }
  })
}

const big = (v: DuckDBValue | undefined): bigint => (typeof v === 'bigint' ? v : v === null || v === undefined ? 0n : BigInt(v as number))

export async function computeVector(src: DatasetSource, q: Query, opts: { signal?: AbortSignal } = {}): Promise<{ vector: BigUint64Array; stats: VectorStats }> {
  const t0 = performance.now()
  const layout = layoutOf(q)
  const per = layout.slots.length
  // per-provider plausibility (masked-sum.md check 6): what one honest provider can contribute
  const bounds = slotBounds(q, 1)
  const vector = new BigUint64Array(layout.length)
  try {
    return await withSource(src, q.timezone, async (c, from, icu) => {
      const schema = await schemaOf(c, from)
      const { sql, params, types, outputs } = compileQuery(q, schema, from, icu)
      const stats: VectorStats = { rows: 0, matched: 0, filtered: 0, clipped: 0, outOfDomain: 0, nullsSkipped: 0, ms: 0 }
      const nulls = new Array<bigint>(q.aggregates.length).fill(0n)
      // an interrupt only reaches a running statement: look again right before the long one
      if (opts.signal?.aborted) throw new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)
      const result = await c.stream(sql, params, types)
      for (;;) {
        if (opts.signal?.aborted) throw new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)
        const chunk = await result.fetchChunk()
        if (!chunk || chunk.rowCount === 0) break
        const cols = chunk.getColumns()
        const keys = cols[0] ?? []
        const counts = cols[1] ?? []
        for (let r = 0; r < chunk.rowCount; r++) {
          const key = keys[r]
          const n = Number(counts[r])
          stats.rows += n
          if (key === null || key === undefined) {
            stats.outOfDomain += n
            continue
          }
          if (big(key) === FILTERED) {
            stats.filtered += n
            continue
          }
          const base = Number(key) * per
          stats.matched += n
          outputs.forEach((o, i) => {
            const v = big(cols[i + 2]?.[r])
            if (o.kind === 'value') {
              const b = bounds[o.slot]
              if (!b || v < b.min || v > b.max) throw new DataError(`aggregate "${layout.slots[o.slot]?.aggregate}": a cell value lies outside what the agreement allows one provider: check max_rows_per_provider and clip`)
              vector[base + o.slot] = BigInt.asUintN(64, v)
            } else if (o.kind === 'nans' && v > 0n) {
              const a = q.aggregates[o.aggregate]
              throw new DataError(`column "${a && 'column' in a ? a.column : '?'}" of aggregate "${a?.name}" contains NaN: clean the data (NaN cannot be clipped or summed)`)
            } else if (o.kind === 'nulls') nulls[o.aggregate] = (nulls[o.aggregate] ?? 0n) + v
            else if (o.kind === 'clipped') stats.clipped += Number(v)
          })
        }
      }
      q.aggregates.forEach((a, i) => {
        const n = nulls[i] ?? 0n
        if (n > 0n && 'nulls' in a && a.nulls === 'fail') throw new DataError(`column "${a.column}" of aggregate "${a.name}" has ${n} NULL values in matched rows and the query says nulls: fail: clean the data or propose nulls: skip`)
        stats.nullsSkipped += Number(n)
      })
      if (stats.outOfDomain > 0 && q.out_of_domain === 'fail') throw await outOfDomainError(c, q, schema, from, stats.outOfDomain, icu)
      if (stats.matched > q.max_rows_per_provider) throw new DataError(`${stats.matched} rows match but the agreement allows at most ${q.max_rows_per_provider} per provider: narrow the filter or propose a larger max_rows_per_provider`)
      stats.ms = Math.round(performance.now() - t0)
      return { vector, stats }
    }, opts.signal)
  } catch (e) {
    vector.fill(0n)
    throw e
  }
}

/** Names the first dimension with a value outside its domain and gives one example value. */
async function outOfDomainError(c: DuckDBConnection, q: Query, schema: Schema, from: string, n: number, icu: boolean): Promise<DataError> {
  for (let d = 0; d < q.group_by.length; d++) {
    const x = compileOutOfDomain(q, schema, from, d, icu)
    const rows = (await c.runAndReadAll(x.sql, x.params, x.types)).getRows()
    if (rows.length > 0) {
      const v = rows[0]?.[0]
      return new DataError(`${n} rows fall outside the group_by domains and the query says out_of_domain: fail; e.g. column "${x.column}" (dimension "${q.group_by[d]?.name}") has ${v === null ? 'NULL' : `value ${String(v)}`}: clean the data or propose out_of_domain: drop`)
    }
  }
  return new DataError(`${n} rows fall outside the group_by domains and the query says out_of_domain: fail: clean the data or propose out_of_domain: drop`)
}
