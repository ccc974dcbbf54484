// This provider's vector for an agreed query, computed by DuckDB over its local source
// (negotiation.md §3.4–3.6). DuckDB scans once and aggregates; only one row per non-empty cell
// comes back to JS, chunk by chunk, so memory is bounded by the number of cells, not rows.
//
// After signing, no row value can change what the other parties observe (negotiation.md §3.7):
// the clean stage turns every bad value into NULL, rows outside a domain are dropped, and every
// per-cell contribution is clamped to the bound the layout assumes. The only ways out are
// failures of this machine (the file vanished, the disk, memory, cancellation), which the caller
// turns into a local_error abort with a fixed detail. Statistics stay local: they describe the data.
import type { Aggregate, Query } from '../query/types.ts'
import { layoutOf, slotBounds } from '../query/layout.ts'
import { DataError } from './errors.ts'
import type { DatasetSource } from './source.ts'
import { compileQuery, FILTERED, type Output } from './compile.ts'
import { withSource } from './engine.ts'
import { addDiscreteGaussianNoise } from '../privacy/sampler.ts'
import { externalEngine } from './sources.ts'

export { closeEngine } from './engine.ts'

/**
 * The noise stage (negotiation.md §3.7 step 5, protocols/privacy.md §7): fresh discrete Gaussian noise from
 * node:crypto, N_Z(0, σ_s²) per the signed plan, on every data slot of every cell (empty cells included), in place,
 * after the clamp and before masking. Nothing is clamped or rounded afterwards. No-op for an exact query.
 */
export function addQueryNoise(q: Query, vector: BigUint64Array): void {
  if (!q.privacy) return
  addDiscreteGaussianNoise(vector, { dataLength: layoutOf(q).length, sigmas: q.privacy.noise.sigmas })
}

export interface AggregateStats {
  aggregate: string
  kind: Aggregate['kind']
  /** Matched rows whose value was NULL after cleaning (NULL, NaN, or a value that did not convert): skipped. */
  nullsSkipped: number
  /** Values outside the aggregate's clip (±infinity included): clipped. */
  clipped: number
}

export interface VectorStats {
  /** Rows in the source (after the CSV/JSON reader skipped malformed lines); null unless `countFiltered`. */
  rows: number | null
  /** Rows that passed the filter and fell inside every domain. */
  matched: number
  /** Rows the filter dropped; null unless `countFiltered` (a run does not count them). */
  filtered: number | null
  /** Aggregate values clipped (over all sum/mean aggregates). */
  clipped: number
  /** Rows that passed the filter but fell outside a domain (dropped). */
  outOfDomain: number
  /** NULL values skipped by sum/mean aggregates. */
  nullsSkipped: number
  /** Cell values clamped to the layout's bound (max_rows_per_provider): the clamp bound on this data. */
  clamped: number
  perAggregate: AggregateStats[]
  ms: number
}

export async function inspectDataset(src: DatasetSource): Promise<{ columns: Array<{ name: string; type: string }>; rows: number }> {
  const ext = await externalEngine(src)
  if (ext) return ext.inspect(src)
  return withSource(src, 'UTC', async ({ c, from, schema }) => {
    const n = await c.runAndReadAll(`SELECT count(*) FROM ${from}`)
    return { columns: [...schema].map(([name, type]) => ({ name, type })), rows: Number(n.getRows()[0]?.[0] ?? 0) }
  })
}

const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : v === null || v === undefined ? 0n : typeof v === 'number' && Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n)

/** n · num / den rounded half away from zero, exactly (den > 0). */
function scaleRound(n: bigint, num: bigint, den: bigint): bigint {
  const x = n * num
  const neg = x < 0n
  const a = neg ? -x : x
  const q = (2n * a + den) / (2n * den)
  return neg ? -q : q
}

const clampTo = (v: bigint, lo: bigint, hi: bigint): bigint => (v < lo ? lo : v > hi ? hi : v)

/**
 * The clamp stage (negotiation.md §3.7, step 4) over one cell's raw values `raw` (slot order):
 * counts to t, sums to t·clip, and a mean's sum and count together (scaled by t/count when the
 * count exceeds t). Returns how many slots the clamp changed.
 */
export function clampCell(q: Query, raw: bigint[], out: BigUint64Array, base: number): number {
  const t = BigInt(q.max_rows_per_provider)
  const bounds = slotBounds(q, 1)
  let slot = 0
  let changed = 0
  const put = (s: number, v: bigint, clamped: bigint): void => {
    if (clamped !== v) changed++
    out[base + s] = BigInt.asUintN(64, clamped)
  }
  for (const a of q.aggregates) {
    const b = bounds[slot] ?? { min: 0n, max: 0n }
    const v = raw[slot] ?? 0n
    if (a.kind === 'mean') {
      const n = raw[slot + 1] ?? 0n
      const sum = n > t ? scaleRound(v, t, n) : v
      put(slot, v, clampTo(sum, b.min, b.max))
      put(slot + 1, n, clampTo(n, 0n, t))
      slot += 2
    } else {
      put(slot, v, clampTo(v, b.min, b.max))
      slot += 1
    }
  }
  return changed
}

/**
 * The fold stage every engine shares, so that each produces the same vector and statistics bit for bit: one call
 * of `add` per result row of the compiled statement (compile.ts), whose column 0 is the row key (cell index, NULL
 * outside a domain, FILTERED when the filter dropped the rows), column 1 the number of source rows behind it and
 * column i + 2 the value of `outputs[i]`. Rows outside the layout are counted and dropped; every cell is clamped
 * (clampCell) into `vector`. `big` is the engine's conversion of one of its values to a bigint (NULL → 0).
 */
export class CellFolder {
  private readonly q: Query
  private readonly outputs: readonly Output[]
  private readonly vector: BigUint64Array
  private readonly big: (v: unknown) => bigint
  private readonly cells: number
  private readonly raw: bigint[]
  private readonly stats: VectorStats & { rows: number; filtered: number }
  private readonly countFiltered: boolean

  /** `countFiltered`: the statement has the branch counting the rows the filter dropped (compile.ts filteredBranch). */
  constructor(q: Query, outputs: readonly Output[], vector: BigUint64Array, big: (v: unknown) => bigint, countFiltered: boolean) {
    this.q = q
    this.outputs = outputs
    this.vector = vector
    this.big = big
    const layout = layoutOf(q)
    this.cells = layout.cells
    this.raw = new Array<bigint>(layout.slots.length).fill(0n)
    const perAggregate: AggregateStats[] = q.aggregates.map((a) => ({ aggregate: a.name, kind: a.kind, nullsSkipped: 0, clipped: 0 }))
    this.countFiltered = countFiltered
    this.stats = { rows: 0, matched: 0, filtered: 0, clipped: 0, outOfDomain: 0, nullsSkipped: 0, clamped: 0, perAggregate, ms: 0 }
  }

  /** One result row; `col(i)` is its column i as the engine returned it. */
  add(col: (i: number) => unknown): void {
    const { stats, raw, big } = this
    const key = col(0)
    const n = Number(col(1))
    stats.rows += n
    if (key !== null && key !== undefined && big(key) === FILTERED) {
      stats.filtered += n
      return
    }
    const cell = key === null || key === undefined ? -1 : Number(key)
    // NULL key: outside a domain; a key outside the layout cannot occur, and is dropped the same way
    if (!(cell >= 0 && cell < this.cells)) {
      stats.outOfDomain += n
      return
    }
    stats.matched += n
    this.outputs.forEach((o, i) => {
      const v = big(col(i + 2))
      if (o.kind === 'value') raw[o.slot] = v
      else {
        const s = stats.perAggregate[o.aggregate]
        if (s && o.kind === 'nulls') s.nullsSkipped += Number(v)
        else if (s) s.clipped += Number(v)
      }
    })
    stats.clamped += clampCell(this.q, raw, this.vector, cell * raw.length)
  }

  /** The vector and its statistics once every row is in; `t0` is when the computation started. */
  finish(t0: number): { vector: BigUint64Array; stats: VectorStats } {
    const { stats } = this
    for (const s of stats.perAggregate) {
      stats.nullsSkipped += s.nullsSkipped
      stats.clipped += s.clipped
    }
    stats.ms = Math.round(performance.now() - t0)
    return { vector: this.vector, stats: this.countFiltered ? stats : { ...stats, rows: null, filtered: null } }
  }
}

/** Options of one computation. */
export interface ComputeOptions {
  signal?: AbortSignal
  /**
   * Also count the rows the filter drops (VectorStats.rows and .filtered, else null): a local diagnostic for
   * `data preview`, which costs a second branch of the statement. A run leaves it off; the vector is the same.
   */
  countFiltered?: boolean
}

export async function computeVector(src: DatasetSource, q: Query, opts: ComputeOptions = {}): Promise<{ vector: BigUint64Array; stats: VectorStats }> {
  const ext = await externalEngine(src)
  if (ext) {
    // never unbounded: the acceptance check refuses this before signing (check.ts); a local error if it got here
    if (q.privacy?.unit !== undefined && q.privacy.unit !== 'row') throw new DataError(`a ${src.format} source cannot bound contributions per privacy unit yet`)
    return ext.compute(src, q, opts)
  }
  const t0 = performance.now()
  const vector = new BigUint64Array(layoutOf(q).length)
  try {
    return await withSource(src, q.timezone, async ({ c, from, schema, icu }) => {
      const countFiltered = opts.countFiltered === true
      const { sql, params, types, outputs } = compileQuery(q, schema, from, icu, { countFiltered })
      const fold = new CellFolder(q, outputs, vector, big, countFiltered)
      // an interrupt only reaches a running statement: look again right before the long one
      if (opts.signal?.aborted) throw new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)
      const result = await c.stream(sql, params, types)
      for (;;) {
        if (opts.signal?.aborted) throw new DataError(`dataset "${src.name}": computation cancelled (the run was stopped)`)
        const chunk = await result.fetchChunk()
        if (!chunk || chunk.rowCount === 0) break
        const cols = chunk.getColumns()
        for (let r = 0; r < chunk.rowCount; r++) fold.add((i) => cols[i]?.[r])
      }
      return fold.finish(t0)
    }, opts.signal)
  } catch (e) {
    vector.fill(0n)
    throw e
  }
}
