// The plaintext truth, computed directly from the companies' Parquet files with hand-written SQL
// (deliberately NOT through src/data), and a cell-by-cell comparison with what the city received.
// Only the example does this: in real life nobody holds all the files.
import { DuckDBInstance } from '@duckdb/node-api'
import { existsSync, readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { coverageCheck } from '../../src/privacy/intervals.ts'

export interface ResultDoc {
  query: { id: string }
  dims: Array<{ name: string; labels: string[] }>
  cells: Array<{ key: string[]; values: Record<string, number | null>; interval?: Record<string, [number | null, number | null]> }>
  /** present for a noisy (differential privacy) result */
  privacy?: { epsilon: number; delta: number; mechanism: string; aggregates: Record<string, { std: number; half_width_95: number; coverage: number }> }
}

export type Expected = Map<string, Record<string, number | null>>

/** A query of this example: its id, a path to its YAML/JSON file, or the parsed file. */
export type QueryRef = string | { id: string }

/** The id of a query given as an id, a query file path, or a parsed query. */
export function queryIdOf(q: QueryRef): string {
  if (typeof q !== 'string') return q.id
  if (!/[/\\]|\.(ya?ml|json)$/.test(q)) return q
  if (!existsSync(q)) throw new Error(`query file ${q} not found`)
  const doc = parse(readFileSync(q, 'utf8')) as { id?: unknown } | null
  if (typeof doc?.id !== 'string') throw new Error(`query file ${q} has no id`)
  return doc.id
}

const RUSH = '(7, 8, 9, 16, 17, 18)'

/**
 * Expected values keyed by the cell key joined with '|', for the three queries of this example
 * (hand-written SQL per query, one per id; cells absent from the map are 0 / null).
 */
export async function plaintextTotals(files: string[], query: QueryRef): Promise<Expected> {
  const queryId = queryIdOf(query)
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  const list = `[${files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}]`
  const out: Expected = new Map()
  try {
    if (queryId === 'pickups-zone-hour' || queryId === 'pickups-zone-hour-dp') {
      const rows = (await c.runAndReadAll(`
        SELECT PULocationID, hour(pickup_datetime), count(*)
        FROM read_parquet(${list})
        WHERE isodow(pickup_datetime) BETWEEN 1 AND 5 AND PULocationID BETWEEN 1 AND 263
        GROUP BY ALL`)).getRows()
      for (const [z, h, n] of rows) out.set(`${String(z)}|${String(h).padStart(2, '0')}`, { pickups: Number(n) })
    } else if (queryId === 'mean-fare-rush') {
      // clip to [0, 500], cents rounded half away from zero, summed exactly, then divided
      const rows = (await c.runAndReadAll(`
        SELECT PULocationID, count(*), sum(round(least(greatest(base_passenger_fare, 0), 500) * 100)::HUGEINT), count(base_passenger_fare)
        FROM read_parquet(${list})
        WHERE hour(pickup_datetime) IN ${RUSH} AND PULocationID BETWEEN 1 AND 263
        GROUP BY ALL`)).getRows()
      for (const [z, n, cents, m] of rows) out.set(String(z), { trips: Number(n), mean_fare: Number(m) === 0 ? null : Number(cents) / 100 / Number(m) })
    } else if (queryId === 'vehicles-rush-hour') {
      // each company's distinct vehicles per hour, summed over companies (what the protocol computes)
      const rows = (await c.runAndReadAll(`
        SELECT h, sum(n) FROM (
          SELECT filename, hour(pickup_datetime) AS h, count(DISTINCT vehicle_id) AS n
          FROM read_parquet(${list}, filename = true)
          WHERE hour(pickup_datetime) IN ${RUSH}
          GROUP BY ALL)
        GROUP BY h`)).getRows()
      for (const [h, n] of rows) out.set(String(h), { vehicles: Number(n) })
    } else throw new Error(`no plaintext reference for query ${queryId}`)
    return out
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

/** Distinct vehicles over all companies together (to show the double counting of summed counts). */
export async function trueDistinctVehicles(files: string[]): Promise<Map<string, number>> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  try {
    const list = `[${files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}]`
    const rows = (await c.runAndReadAll(`SELECT hour(pickup_datetime), count(DISTINCT vehicle_id) FROM read_parquet(${list}) WHERE hour(pickup_datetime) IN ${RUSH} GROUP BY 1`)).getRows()
    return new Map(rows.map(([h, n]) => [String(h), Number(n)]))
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

/** Verify one result document against the plaintext totals of `files`: the mismatches, [] when right. */
export async function verifyResult(files: string[], query: QueryRef, doc: ResultDoc): Promise<string[]> {
  const id = queryIdOf(query)
  if (doc.query.id !== id) return [`result is for query ${doc.query.id}, expected ${id}`]
  return compare(doc, await plaintextTotals(files, id))
}

/** Mismatching cells as readable lines (empty when the result is exactly right). */
export function compare(doc: ResultDoc, expected: Expected): string[] {
  const bad: string[] = []
  const cells = doc.dims.reduce((n, d) => n * d.labels.length, 1)
  if (doc.cells.length !== cells) bad.push(`${doc.query.id}: ${doc.cells.length} cells, the dims give ${cells}`)
  for (const cell of doc.cells) {
    const k = cell.key.join('|')
    const want = expected.get(k)
    for (const [name, got] of Object.entries(cell.values)) {
      const w = want?.[name] ?? (name === 'mean_fare' ? null : 0)
      const ok = w === null || got === null ? w === got : Math.abs(got - w) <= 1e-9 * Math.max(1, Math.abs(w))
      if (!ok) bad.push(`${doc.query.id} cell ${k} ${name}: got ${String(got)}, expected ${String(w)}`)
    }
  }
  const keys = new Set(doc.cells.map((c) => c.key.join('|')))
  for (const k of expected.keys()) if (!keys.has(k)) bad.push(`${doc.query.id}: expected cell ${k} missing from the result`)
  return bad
}

export interface NoisyVerdict {
  ok: boolean
  /** cells whose exact total lies inside the reported 95% interval */
  hits: number
  cells: number
  /** the interval's exact coverage, and the binomial acceptance range at 1e-6 */
  coverage: number
  lower: number
  upper: number
  meanAbsError: number
  maxAbsError: number
  /** per cell: key, exact, noisy, error */
  errors: Array<{ key: string; exact: number; noisy: number; error: number }>
}

/**
 * The honest check of a noisy result (protocols/privacy.md §7): the exact totals from the files must lie inside
 * the reported 95% intervals for a number of cells consistent with the interval's coverage (coverageCheck: a
 * binomial bound at 1e-6, which fails when the noise is switched off or doubled, given enough cells).
 */
export function verifyNoisy(doc: ResultDoc, expected: Expected, aggregate: string): NoisyVerdict {
  const info = doc.privacy?.aggregates[aggregate]
  if (!doc.privacy || !info) throw new Error(`${doc.query.id}: not a noisy result for aggregate ${aggregate}`)
  let hits = 0
  const errors: NoisyVerdict['errors'] = []
  for (const cell of doc.cells) {
    const k = cell.key.join('|')
    const exact = Number(expected.get(k)?.[aggregate] ?? 0)
    const noisy = Number(cell.values[aggregate])
    const [lo, hi] = cell.interval?.[aggregate] ?? [null, null]
    if (lo !== null && hi !== null && exact >= lo && exact <= hi) hits++
    errors.push({ key: k, exact, noisy, error: noisy - exact })
  }
  const v = coverageCheck(hits, doc.cells.length, info.coverage)
  const abs = errors.map((e) => Math.abs(e.error))
  return { ok: v.ok, hits, cells: doc.cells.length, coverage: info.coverage, lower: v.lower, upper: v.upper, meanAbsError: abs.reduce((a, b) => a + b, 0) / Math.max(1, abs.length), maxAbsError: Math.max(0, ...abs), errors }
}
