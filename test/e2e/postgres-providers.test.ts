// End to end through the real CLI (issue 19): three providers as separate processes, p1 reading
// PostgreSQL (a real server the test starts, read-only role, connection string in a 0600 file), p2
// Parquet, p3 CSV; the buyer's result equals the plain computation over all three providers' rows.
// `data inspect` and `data preview` work on the Postgres dataset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'
import { expectPlaintextTotals } from '../helpers/expect-result.ts'
import { pgSkip, startPostgres, type PgServer } from '../helpers/postgres.ts'
import { sql } from '../data/fixtures.ts'

const skip = pgSkip()

describe.skipIf(skip !== null)('three providers: Postgres, Parquet, CSV', () => {
  let dc: DataCluster
  let srv: PgServer
  const setDataset = (name: string, ds: Record<string, unknown>): void => {
    const cfgPath = join(dc.cluster.byName(name).home, 'config.yaml')
    const cfg = parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>
    cfg.datasets = { trips: ds }
    writeFileSync(cfgPath, stringify(cfg))
  }
  beforeAll(async () => {
    srv = await startPostgres()
    dc = await makeDataCluster(3, 300)
    // p1: the same rows in a Postgres table, through the read-only role
    const home1 = dc.cluster.byName('p1').home
    await srv.exec(`CREATE TABLE trips (zone integer, pickup_datetime timestamp, fare double precision, license text)`)
    await srv.exec(`COPY trips FROM '${join(home1, 'trips.csv')}' WITH (FORMAT csv, HEADER true)`).catch(async () => {
      // the server (user postgres) may not read the test's home: insert the rows instead
      const lines = readFileSync(join(home1, 'trips.csv'), 'utf8').trim().split('\n').slice(1)
      for (const l of lines) await srv.exec('INSERT INTO trips VALUES ($1, $2, $3, $4)', l.split(','))
    })
    await srv.exec('GRANT SELECT ON trips TO reader')
    const urlFile = join(home1, 'pg.url')
    writeFileSync(urlFile, srv.readerUrl(), { mode: 0o600 })
    setDataset('p1', { format: 'postgres', table: 'trips', schema: 'public', connection_file: 'pg.url' })
    // p2: Parquet
    const home2 = dc.cluster.byName('p2').home
    await sql(`COPY (SELECT * FROM read_csv('${join(home2, 'trips.csv')}', header = true, columns = {'zone': 'INTEGER', 'pickup_datetime': 'TIMESTAMP', 'fare': 'DOUBLE', 'license': 'VARCHAR'})) TO '${join(home2, 'trips.parquet')}' (FORMAT parquet)`)
    setDataset('p2', { path: 'trips.parquet', format: 'parquet' })
    for (const p of dc.providers) await dc.cluster.serve(p)
  }, 180_000)
  afterAll(async () => {
    await dc?.cluster.teardown()
    srv?.stop()
  })

  it('the buyer gets exactly the plaintext totals over Postgres + Parquet + CSV', async () => {
    const out = join(dc.dir, 'out.json')
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out, '--timeout', '90'])
    expect(r.code, r.stderr).toBe(0)
    expectPlaintextTotals(dc, out)
  }, 180_000)

  it('data inspect and data preview work on the Postgres dataset', async () => {
    const i = await dc.cluster.cli('p1', ['--json', 'data', 'inspect', 'trips'])
    expect(i.code, i.stderr).toBe(0)
    const info = JSON.parse(i.stdout) as { rows: number; columns: Array<{ name: string }> }
    expect(info.rows).toBe(300)
    expect(info.columns.map((c) => c.name)).toEqual(['zone', 'pickup_datetime', 'fare', 'license'])
    const p = await dc.cluster.cli('p1', ['data', 'preview', dc.queryFile, '--format', 'csv'])
    expect(p.code, p.stderr).toBe(0)
    const rows = p.stdout.trim().split('\n')
    expect(rows[0]).toBe('zone,hour,pickups,fare')
    expect(rows.slice(1).reduce((a, l) => a + Number(l.split(',')[2]), 0)).toBe(dc.data[0]?.filter((t) => t.zone <= 5).length)
  }, 120_000)

  it('a database failure after signing aborts with local_error and the fixed detail; no engine message reaches the buyer or the log', async () => {
    // a view whose metadata is fine but whose rows raise an error only when read (as a failing disk or a broken function would)
    await srv.exec(`CREATE VIEW trips_broken AS SELECT zone, pickup_datetime, fare / (zone - zone)::float8 AS fare, license FROM trips`)
    await srv.exec('GRANT SELECT ON trips_broken TO reader')
    const home = dc.cluster.byName('p1').home
    await dc.cluster.stop('p1')
    setDataset('p1', { format: 'postgres', table: 'trips_broken', connection_file: 'pg.url' })
    await dc.cluster.serve('p1')
    const out = join(dc.dir, 'broken.json')
    const r = await dc.cluster.cli('city', ['--json', 'query', 'run', dc.queryFile, '--out', out, '--timeout', '60'])
    const served = await dc.cluster.stop('p1')
    setDataset('p1', { format: 'postgres', table: 'trips', schema: 'public', connection_file: 'pg.url' })
    await dc.cluster.serve('p1')
    expect(r.code, r.stderr).toBe(4)
    expect(existsSync(out)).toBe(false)
    expect(r.stdout + r.stderr).toMatch(/local_error/)
    expect(r.stdout + r.stderr).toContain('the provider could not compute its vector')
    expect(r.stdout + r.stderr).not.toMatch(/division by zero|trips_broken|r3ader/)
    const log = readFileSync(join(home, 'logs', 'agent.log'), 'utf8') + (served?.stdout ?? '') + (served?.stderr ?? '')
    expect(log).toMatch(/could not compute this provider's vector: an error of the local data engine;/)
    expect(log).not.toMatch(/division by zero|r3ader/)
  }, 180_000)
})
