// The interface every dataset source implements, whatever engine reads it: the DuckDB path over
// local files (engine.ts, compute.ts, check.ts, diagnose.ts) and PostgreSQL (postgres.ts), so
// that another SQL engine (a warehouse, a distributed engine) fits later. Each implements the
// same pipeline (negotiation.md §3.7) and must give bit-identical vectors for the same rows.
import type { Query } from '../query/types.ts'
import type { SchemaReason } from './check.ts'
import type { ComputeOptions, VectorStats } from './compute.ts'
import type { CleaningReport } from './diagnose.ts'
import type { DatasetSource } from './source.ts'

export interface Inspection {
  columns: Array<{ name: string; type: string }>
  rows: number
}

export interface SourceEngine {
  /** Columns and types from metadata, and the number of rows (`data inspect`). */
  inspect(src: DatasetSource): Promise<Inspection>
  /** The acceptance-time schema check (negotiation.md §6.1): metadata only, never throws for a problem of the data. */
  check(src: DatasetSource, q: Query, provider: string): Promise<SchemaReason | null>
  /** The cleaned, aggregated and clamped vector (§3.4–3.7); stats stay local. */
  compute(src: DatasetSource, q: Query, opts: ComputeOptions): Promise<{ vector: BigUint64Array; stats: VectorStats }>
  /** What the clean stage does to this data (`data preview`), local only. */
  diagnose(src: DatasetSource, q: Query): Promise<CleaningReport>
}

/** The engine of a source other than DuckDB's files, or null for the DuckDB path. */
export async function externalEngine(src: DatasetSource): Promise<SourceEngine | null> {
  if (src.format === 'postgres') return (await import('./postgres.ts')).postgresEngine
  return null
}
