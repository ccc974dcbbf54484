// config.yaml `datasets:` → DatasetSource: strict keys, paths resolved against the agent home,
// one-line DataErrors that say to fix config.yaml.
import { describe, expect, it } from 'vitest'
import { datasetFor, validateDatasets } from '../../src/data/source.ts'
import { DataError } from '../../src/data/errors.ts'

const home = '/srv/agent'
const fails = (raw: Record<string, unknown>, re: RegExp): void => {
  let err: unknown = null
  try {
    validateDatasets(raw, home)
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(DataError)
  expect((err as Error).name).toBe('DataError')
  expect((err as Error).message).toMatch(re)
  expect((err as Error).message).toMatch(/fix datasets\.\w+ in config\.yaml$/)
}

describe('validateDatasets', () => {
  it('resolves relative paths against the home, keeps absolute ones and globs', () => {
    const s = validateDatasets({
      trips: { path: 'data/trips/*.parquet', format: 'parquet' },
      csv: { path: '/data/trips.csv', format: 'csv', columns: { PULocationID: 'INTEGER', pickup_datetime: 'TIMESTAMP', fare: 'DECIMAL(18,3)', at: 'TIMESTAMP WITH TIME ZONE' } },
      db: { path: '../w.duckdb', format: 'duckdb', table: 'trips' },
      js: { path: 't.ndjson', format: 'json', columns: { a: 'INTEGER' } }
    }, home)
    expect(s.trips).toEqual({ name: 'trips', path: '/srv/agent/data/trips/*.parquet', format: 'parquet' })
    expect(s.csv?.columns?.fare).toBe('DECIMAL(18,3)')
    expect(s.db).toEqual({ name: 'db', path: '/srv/w.duckdb', format: 'duckdb', table: 'trips' })
    expect(s.js?.path).toBe('/srv/agent/t.ndjson')
  })

  it('infers the format from the extension when it is left out', () => {
    expect(validateDatasets({ a: { path: 'x.ndjson', columns: { a: 'INT' } } }, home).a?.format).toBe('json')
    expect(validateDatasets({ a: { path: 'x.parquet' } }, home).a?.format).toBe('parquet')
  })

  it('refuses bad entries with a message naming the fix', () => {
    fails({ t: { path: 'x', format: 'xlsx' } }, /format must be one of csv, parquet, json, duckdb/)
    fails({ t: { format: 'csv' } }, /path must be a file path/)
    fails({ t: { path: 'x.csv', format: 'csv', extra: 1 } }, /unknown key "extra"/)
    fails({ t: 'x.csv' }, /expected \{path, format\}/)
    fails({ t: { path: 'x.duckdb', format: 'duckdb' } }, /needs table/)
    fails({ t: { path: 'x.csv', format: 'csv', table: 't' } }, /table applies only to format duckdb/)
    fails({ t: { path: 'x.parquet', format: 'parquet', columns: { a: 'INTEGER' } } }, /apply only to csv and json/)
    fails({ t: { path: 'x.csv', format: 'csv', columns: ['INTEGER'] } }, /must map column names/)
    // issue 14 §1: declared, never sniffed (sniffing reads values)
    fails({ t: { path: 'x.csv', format: 'csv' } }, /a csv dataset needs columns: .*every column in file order/)
    fails({ t: { path: 'x.ndjson', format: 'json' } }, /a json dataset needs columns/)
    fails({ t: { path: 'x.csv', format: 'csv', columns: {} } }, /at least one column/)
    fails({ t: { path: 'x.csv', format: 'csv', columns: { a: "INTEGER'); DROP TABLE x; --" } } }, /columns\.a: not a DuckDB type name/)
  })
})

describe('datasetFor', () => {
  it('finds a configured dataset, or says how to configure it', () => {
    const s = validateDatasets({ trips: { path: 'a.parquet', format: 'parquet' } }, home)
    expect(datasetFor(s, 'trips').name).toBe('trips')
    expect(() => datasetFor(s, 'rides')).toThrow(DataError)
    expect(() => datasetFor(s, 'rides')).toThrow(/dataset "rides" is not configured: add it under datasets: in config\.yaml/)
  })
})
