// This provider's vector for an agreed query, computed by DuckDB over its local source
// (negotiation.md §3.4-3.5). DuckDB aggregates; only one row per non-empty cell comes back to JS,
// so memory is bounded by the number of cells, not rows. Statistics stay local.
import { existsSync } from 'node:fs'
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api'
import type { Query } from '../query/types.ts'
import { layoutOf } from '../query/layout.ts'
import { DataError } from './errors.ts'
import type { DatasetSource } from './source.ts'
import { compileQuery, quoteIdent, type Schema } from './compile.ts'

export interface VectorStats {
  rows: number
  matched: number
  filtered: number
  clipped: number
  outOfDomain: number
  nullsSkipped: number
  ms: number
}

const str = (s: string): string => `'${s.replace(/'/g, "''")}'`

/** The FROM clause of a source; paths come from this provider's own config, quoted as SQL strings. */
async function openSource(c: DuckDBConnection, src: DatasetSource): Promise<string> {
  if (!/[*?[]/.test(src.path) && !existsSync(src.path)) throw new DataError(`dataset "${src.name}": ${src.path} does not exist: fix datasets.${src.name}.path in config.yaml`)
  switch (src.format) {
    case 'parquet':
      return `read_parquet(${str(src.path)})`
    case 'json':
      return `read_json_auto(${str(src.path)})`
    case 'csv': {
      const types = src.columns ? `, types = {${Object.entries(src.columns).map(([k, v]) => `${str(k)}: ${str(v)}`).join(', ')}}` : ''
      return `read_csv(${str(src.path)}, header = true${types})`
    }
    case 'duckdb':
      await c.run(`ATTACH ${str(src.path)} AS __mpc_src (READ_ONLY)`)
      return `__mpc_src.${quoteIdent(src.table as string)}`
  }
}

async function withSource<T>(src: DatasetSource, f: (c: DuckDBConnection, from: string) => Promise<T>): Promise<T> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  try {
    const from = await openSource(c, src)
    return await f(c, from)
  } catch (e) {
    if (e instanceof DataError) throw e
    const msg = (e as Error).message.split('\n')[0] ?? ''
    throw new DataError(`dataset "${src.name}" (${src.path}): ${msg}`)
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

async function schemaOf(c: DuckDBConnection, from: string): Promise<Schema> {
  const r = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`)
  return new Map(r.getRowObjects().map((o) => [String(o.column_name), String(o.column_type)]))
}

export async function inspectDataset(src: DatasetSource): Promise<{ columns: Array<{ name: string; type: string }>; rows: number }> {
  return withSource(src, async (c, from) => {
    const schema = await schemaOf(c, from)
    const n = await c.runAndReadAll(`SELECT count(*) FROM ${from}`)
    return { columns: [...schema].map(([name, type]) => ({ name, type })), rows: Number(n.getRows()[0]?.[0] ?? 0) }
  })
}

export async function computeVector(src: DatasetSource, q: Query, opts: { signal?: AbortSignal } = {}): Promise<{ vector: BigUint64Array; stats: VectorStats }> {
  const t0 = performance.now()
  const layout = layoutOf(q)
  return withSource(src, async (c, from) => {
    const schema = await schemaOf(c, from)
    const { sql, params, outputs } = compileQuery(q, schema, from)
    const total = Number((await c.runAndReadAll(`SELECT count(*) FROM ${from}`)).getRows()[0]?.[0] ?? 0)
    if (opts.signal?.aborted) throw new DataError('cancelled')
    const rows = (await c.runAndReadAll(sql, params as never)).getRows()
    const per = layout.slots.length
    const vector = new BigUint64Array(layout.length)
    const stats: VectorStats = { rows: total, matched: 0, filtered: 0, clipped: 0, outOfDomain: 0, nullsSkipped: 0, ms: 0 }
    let passed = 0
    for (const row of rows) {
      const cell = row[0]
      const n = Number(row[1])
      passed += n
      if (cell === null) {
        stats.outOfDomain += n
        continue
      }
      const ci = Number(cell)
      stats.matched += n
      outputs.forEach((o, i) => {
        const v = row[i + 2]
        const num = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v ?? 0)))
        if (o.kind === 'value') vector[ci * per + o.slot] = BigInt.asUintN(64, num)
        else if (o.kind === 'nans' && num > 0n) throw new DataError(`column of aggregate "${o.aggregate}" contains NaN values: clean the data (NaN cannot be clipped or summed)`)
        else if (o.kind === 'nulls' && num > 0n) {
          const a = q.aggregates.find((x) => x.name === o.aggregate)
          if (a && 'nulls' in a && a.nulls === 'fail') throw new DataError(`column "${a.column}" of aggregate "${a.name}" has NULL values and the query says nulls: fail`)
          stats.nullsSkipped += Number(num)
        } else if (o.kind === 'clipped') stats.clipped += Number(num)
      })
    }
    stats.filtered = total - passed
    if (stats.outOfDomain > 0 && q.out_of_domain === 'fail') {
      throw new DataError(`${stats.outOfDomain} rows fall outside a group_by domain and the query says out_of_domain: fail`)
    }
    if (stats.matched > q.max_rows_per_provider) {
      vector.fill(0n)
      throw new DataError(`${stats.matched} rows match but the agreement allows at most ${q.max_rows_per_provider} per provider`)
    }
    stats.ms = Math.round(performance.now() - t0)
    return { vector, stats }
  })
}
