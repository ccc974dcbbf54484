// Shared helpers for the data-layer tests: a tmp dir, DuckDB one-shots to write fixture files,
// and valid queries (through the real validator, with real peer IDs).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { validateDatasets, type DatasetSource } from '../../src/data/source.ts'
import { validateQuery } from '../../src/query/validate.ts'
import type { Query } from '../../src/query/types.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { makeParties } from '../helpers/parties.ts'

export const tmp = (): string => mkdtempSync(join(tmpdir(), 'mpc-data-'))

/** Runs SQL in a throwaway DuckDB (fixture files via COPY ... TO). */
export async function sql(s: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  try {
    await c.run(s)
  } finally {
    c.closeSync()
    db.closeSync()
  }
}

let participants: Promise<{ buyer: string; providers: string[] }> | null = null
export function peers(): Promise<{ buyer: string; providers: string[] }> {
  participants ??= makeParties(3).then((p) => ({ buyer: p.buyer.peerId, providers: p.providers.map((x) => x.peerId).sort(comparePeers) }))
  return participants
}

/** A validated query with defaults around `over`. */
export async function query(over: Partial<Query> = {}): Promise<Query> {
  const p = await peers()
  return validateQuery({
    version: 1, id: 'q', title: 't', dataset: 'trips', timezone: 'UTC', filter: null,
    group_by: [{ name: 'zone', domain: { kind: 'int_range', ref: { column: 'zone' }, min: 1, max: 3 } }],
    aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'sum', column: 'fare', scale: 100, clip: [0, 500] }],
    max_rows_per_provider: 1000, participants: p, min_providers: 3, output: [p.buyer],
    timeouts: { negotiate_s: 5, compute_s: 5, confirm_s: 5 }, ...over
  })
}

export const source = (dir: string, file: string, format: string, extra: Record<string, unknown> = {}): DatasetSource =>
  validateDatasets({ trips: { path: file, format, ...extra } }, dir).trips as DatasetSource

/** The vector as signed numbers (two's complement decoded). */
export const signed = (v: BigUint64Array): number[] => Array.from(v, (x) => Number(BigInt.asIntN(64, x)))

/** The rejection of `p`, which must happen. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => null, (x: unknown) => x)
  if (!(e instanceof Error)) throw new Error('expected a rejection')
  return e
}
