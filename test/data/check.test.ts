// The schema check at acceptance (negotiation.md §6.1, issue 14 §1): problems knowable without
// reading a row are a rejection with a reason code before signing, never an abort after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkDataset, checksDone, splitHeader } from '../../src/data/check.ts'
import { closeEngine } from '../../src/data/compute.ts'
import { query as q, source, sql, tmp } from './fixtures.ts'

const dir = tmp()
const COLS = { zone: 'INTEGER', fare: 'DOUBLE', ts: 'TIMESTAMP', driver: 'VARCHAR' }
beforeAll(async () => {
  writeFileSync(join(dir, 't.csv'), 'zone,fare,ts,driver\n1,2.5,2024-03-01 10:00:00,a\n')
  writeFileSync(join(dir, 'u.csv'), 'zone,fare,ts,driver\n2,abc,never,b\n')
  writeFileSync(join(dir, 'other.csv'), 'fare,zone,ts,driver\n1,2,x,y\n')
  await sql(`COPY (SELECT 1 AS zone, 2.5::DOUBLE AS fare, TIMESTAMP '2024-03-01 10:00:00' AS ts, 'a' AS driver) TO '${join(dir, 'a.parquet')}' (FORMAT parquet)`)
})
afterAll(async () => {
  await closeEngine()
  rmSync(dir, { recursive: true, force: true })
})

describe('checkDataset', () => {
  it('accepts a query that fits (csv with declared columns, a glob of csv files, parquet)', async () => {
    expect(await checkDataset(source(dir, 't.csv', 'csv', { columns: COLS }), await q(), 'p1')).toBeNull()
    expect(await checkDataset(source(dir, '[tu].csv', 'csv', { columns: COLS }), await q(), 'p1')).toBeNull()
    expect(await checkDataset(source(dir, 'a.parquet', 'parquet'), await q(), 'p1')).toBeNull()
  })
  it('a missing file or a glob with no match is dataset_unavailable, and the message sent names no path', async () => {
    for (const s of [source(dir, 'gone.csv', 'csv', { columns: COLS }), source(dir, 'none*.csv', 'csv', { columns: COLS }), source(dir, 'gone.parquet', 'parquet')]) {
      const r = await checkDataset(s, await q(), 'p1')
      expect(r?.code).toBe('dataset_unavailable')
      expect(r?.message).toBe('dataset "trips" is configured at p1 but cannot be read there (its operator must fix it)')
      expect(r?.message).not.toContain(dir)
    }
  })
  it('a CSV header that differs from the declared columns is dataset_unavailable (the header is metadata, not data)', async () => {
    const r = await checkDataset(source(dir, 'other.csv', 'csv', { columns: COLS }), await q(), 'p1')
    expect(r?.code).toBe('dataset_unavailable')
    expect(r?.local).toMatch(/has the columns \[fare, zone, ts, driver\] but datasets\.trips\.columns in config\.yaml declares \[zone, fare, ts, driver\]/)
  })
  it('a missing column, an incompatible type, a literal that does not convert: schema_mismatch', async () => {
    const s = source(dir, 't.csv', 'csv', { columns: COLS })
    const cases: Array<[Parameters<typeof q>[0], RegExp]> = [
      [{ aggregates: [{ name: 's', kind: 'sum', column: 'tip', scale: 1, clip: [0, 1] }] }, /column "tip" \(used in aggregate "s"\) is not in dataset "trips" at p1/],
      [{ aggregates: [{ name: 's', kind: 'sum', column: 'driver', scale: 1, clip: [0, 1] }] }, /column "driver" has type VARCHAR; aggregate "s" \(sum\) needs a numeric column/],
      [{ group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'zone' } }] }, /needs a TIMESTAMP or DATE column/],
      [{ filter: { op: 'cmp', cmp: '<', ref: { column: 'ts' }, value: 'yesterday' } }, /the literal "yesterday" cannot be read as TIMESTAMP/],
      [{ filter: { op: 'cmp', cmp: '=', ref: { column: 'ts' }, value: true } }, /the boolean true cannot be compared with a column of type TIMESTAMP in dataset "trips" at p1/],
      [{ filter: { op: 'in', ref: { column: 'ts' }, values: [5], negated: false } }, /the number 5 cannot be compared with a column of type TIMESTAMP/]
    ]
    for (const [over, re] of cases) {
      const r = await checkDataset(s, await q(over), 'p1')
      expect(r?.code, JSON.stringify(over)).toBe('schema_mismatch')
      expect(r?.message).toMatch(re)
    }
  })
  it('many literals are checked in a few statements and the first that does not convert is named (a 600-value IN list, one bad, repeats)', async () => {
    const s = source(dir, 't.csv', 'csv', { columns: COLS })
    const values = Array.from({ length: 600 }, (_, i) => (i === 400 ? 'not a time' : `2024-03-01 10:${String(i % 60).padStart(2, '0')}:00`))
    const r = await checkDataset(s, await q({ filter: { op: 'in', ref: { column: 'ts' }, values, negated: false } }), 'p1')
    expect(r?.code).toBe('schema_mismatch')
    expect(r?.message).toMatch(/the literal "not a time" cannot be read as TIMESTAMP/)
    // and all good: accepted
    expect(await checkDataset(s, await q({ filter: { op: 'in', ref: { column: 'ts' }, values: values.map((v, i) => (i === 400 ? '2024-03-02 00:00:00' : v)), negated: false } }), 'p1')).toBeNull()
  })
  it('a misspelt column: the suggestion is local only, never in the reason sent to the buyer', async () => {
    const s = source(dir, 't.csv', 'csv', { columns: COLS })
    const r = await checkDataset(s, await q({ aggregates: [{ name: 's', kind: 'sum', column: 'fair', scale: 1, clip: [0, 1] }] }), 'p1')
    expect(r?.code).toBe('schema_mismatch')
    expect(r?.local).toMatch(/column "fair" \(used in aggregate "s"\) is not in dataset "trips": did you mean "fare"\?/)
    expect(r?.message).not.toMatch(/did you mean|"fare"/)
  })
  it('reads no row: values that would not convert do not matter at acceptance', async () => {
    expect(await checkDataset(source(dir, 'u.csv', 'csv', { columns: COLS }), await q(), 'p1')).toBeNull()
  })
  it('a pass is remembered for the same query over the same file, and checked again once the file changed', async () => {
    writeFileSync(join(dir, 'c.csv'), 'zone,fare,ts,driver\n1,2.5,2024-03-01 10:00:00,a\n')
    const s = source(dir, 'c.csv', 'csv', { columns: COLS })
    const query = await q()
    expect(await checkDataset(s, query, 'p1')).toBeNull()
    const ran = checksDone()
    expect(await checkDataset(s, query, 'p1')).toBeNull()
    expect(checksDone(), 'the same proposal again: answered from the remembered pass').toBe(ran)
    // another query, the same under another provider name, or another dataset configuration: checked
    expect(await checkDataset(s, await q({ aggregates: [{ name: 'n', kind: 'count' }] }), 'p1')).toBeNull()
    expect(await checkDataset(s, query, 'p2')).toBeNull()
    expect(await checkDataset({ ...s, name: 'trips2' }, query, 'p1')).toBeNull()
    expect(checksDone()).toBe(ran + 3)
    // the file's header no longer matches the declared columns: the change is seen, the proposal refused
    writeFileSync(join(dir, 'c.csv'), 'fare,zone,ts,driver\n1,2.5,2024-03-01 10:00:00,a\n')
    expect((await checkDataset(s, query, 'p1'))?.code).toBe('dataset_unavailable')
    // a glob is checked every time (it can gain files)
    const g = source(dir, '[c].csv', 'csv', { columns: COLS })
    const before = checksDone()
    await checkDataset(g, query, 'p1')
    await checkDataset(g, query, 'p1')
    expect(checksDone()).toBe(before + 2)
  })
  it('a DuckDB table is checked every time: it can be a view over files the key cannot see', async () => {
    await sql(`COPY (SELECT 1 AS zone, 2.5::DOUBLE AS fare, TIMESTAMP '2024-03-01 10:00:00' AS ts, 'a' AS driver) TO '${join(dir, 'ext.parquet')}' (FORMAT parquet)`)
    await sql(`ATTACH '${join(dir, 'v.duckdb')}' AS v; CREATE VIEW v.trips AS SELECT * FROM read_parquet('${join(dir, 'ext.parquet')}')`)
    const s = source(dir, 'v.duckdb', 'duckdb', { table: 'trips' })
    const query = await q()
    expect(await checkDataset(s, query, 'p1')).toBeNull()
    // the outside file loses a column the query uses; the database file itself is untouched
    await sql(`COPY (SELECT 1 AS zone, 2.5::DOUBLE AS fee, TIMESTAMP '2024-03-01 10:00:00' AS ts, 'a' AS driver) TO '${join(dir, 'ext.parquet')}' (FORMAT parquet)`)
    expect((await checkDataset(s, query, 'p1'))?.code).toBe('schema_mismatch')
  })
  it('a Parquet file rewritten with another schema is checked again', async () => {
    const file = join(dir, 'p.parquet')
    await sql(`COPY (SELECT 1 AS zone, 2.5::DOUBLE AS fare, TIMESTAMP '2024-03-01 10:00:00' AS ts, 'a' AS driver) TO '${file}' (FORMAT parquet)`)
    const s = source(dir, 'p.parquet', 'parquet')
    const query = await q()
    expect(await checkDataset(s, query, 'p1')).toBeNull()
    const ran = checksDone()
    expect(await checkDataset(s, query, 'p1')).toBeNull()
    expect(checksDone()).toBe(ran)
    await sql(`COPY (SELECT 1 AS zone, 'x' AS fare, TIMESTAMP '2024-03-01 10:00:00' AS ts, 'a' AS driver) TO '${file}' (FORMAT parquet)`)
    expect((await checkDataset(s, query, 'p1'))?.code).toBe('schema_mismatch')
  })
  it('splitHeader follows CSV quoting', () => {
    expect(splitHeader('a,"b,c","d""e", f ')).toEqual(['a', 'b,c', 'd"e', 'f'])
  })
})
