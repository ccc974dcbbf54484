// Issue 19: the zone × hour query over a trips table in PostgreSQL (a real server started here as in
// the tests, test/helpers/postgres.ts), through the agent's source (computeVector: one statement in
// the database, clamp in the agent) vs the same GROUP BY run by `psql` (the lower bound). The figure
// is the agent's overhead beyond the database's own time, and the agent's memory. Asserts nothing.
// Standalone: node bench/postgres.ts [rows]
import { spawnSync } from 'node:child_process'
import { computeVector } from '../src/data/compute.ts'
import { validateDatasets, type DatasetSource } from '../src/data/source.ts'
import type { Query } from '../src/query/types.ts'
import { startPostgres } from '../test/helpers/postgres.ts'

const QUERY: Query = {
  version: 1, id: 'bench-pg-zone-hour', title: 'Pickups and mean fare per zone and hour', dataset: 'trips', timezone: 'America/New_York', filter: null,
  group_by: [
    { name: 'zone', domain: { kind: 'int_range', ref: { column: 'PULocationID' }, min: 1, max: 263 } },
    { name: 'hour', domain: { kind: 'hour_of_day', column: 'pickup_datetime' } }
  ],
  aggregates: [{ name: 'pickups', kind: 'count' }, { name: 'fare', kind: 'mean', column: 'base_passenger_fare', scale: 100, clip: [0, 500] }],
  max_rows_per_provider: 100_000_000,
  participants: { buyer: 'bench', providers: ['a', 'b', 'c'] }, min_providers: 3, output: ['bench'],
  timeouts: { negotiate_s: 30, compute_s: 600, confirm_s: 30 }
}

/** The plain GROUP BY a DBA would write for the same cells (no cleaning, ties to even): the lower bound. */
const PLAIN = `SELECT "PULocationID", extract(hour FROM pickup_datetime AT TIME ZONE 'America/New_York') AS h, count(*), sum(round(least(greatest(base_passenger_fare, 0), 500) * 100)), count(base_passenger_fare)
FROM trips WHERE "PULocationID" BETWEEN 1 AND 263 GROUP BY 1, 2`

export interface PgBench { rows: number; psql_s: number; agent_s: number; overhead_s: number; agent_rss_delta_mb: number }

export async function benchPostgres(opts: { rows: number }): Promise<PgBench> {
  const srv = await startPostgres()
  try {
    await srv.exec(`CREATE TABLE trips AS SELECT (1 + (i * 7919) % 263)::integer AS "PULocationID",
      timestamptz '2024-01-01 00:00+00' + ((i * 104729) % 2678400) * interval '1 second' AS pickup_datetime,
      CASE WHEN i % 100 = 0 THEN NULL ELSE ((i * 31) % 12000) / 100.0 END::float8 AS base_passenger_fare
      FROM generate_series(1::bigint, ${Math.floor(opts.rows)}) i`)
    await srv.exec('ANALYZE trips')
    await srv.exec('GRANT SELECT ON trips TO reader')
    // warm the cache once, then time psql (process start included: a few ms)
    const psql = (): number => {
      const t0 = performance.now()
      const r = spawnSync('/usr/lib/postgresql/15/bin/psql', ['-X', '-q', '-h', srv.socketDir, '-p', String(srv.port), '-U', 'postgres', '-d', 'postgres', '-c', PLAIN, '-o', '/dev/null'], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`psql: ${r.stderr}`)
      return (performance.now() - t0) / 1000
    }
    psql()
    const psql_s = Math.min(psql(), psql())
    process.env.MPC_BENCH_PG_URL = srv.readerUrl()
    const src = validateDatasets({ trips: { format: 'postgres', table: 'trips', connection_env: 'MPC_BENCH_PG_URL' } }, '/').trips as DatasetSource
    const rss0 = process.memoryUsage().rss
    let agent_s = Infinity
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now()
      const { vector } = await computeVector(src, QUERY)
      vector.fill(0n)
      agent_s = Math.min(agent_s, (performance.now() - t0) / 1000)
    }
    const r = (x: number): number => Math.round(x * 1000) / 1000
    return { rows: opts.rows, psql_s: r(psql_s), agent_s: r(agent_s), overhead_s: r(agent_s - psql_s), agent_rss_delta_mb: Math.round((process.memoryUsage().rss - rss0) / 1e6) }
  } finally {
    srv.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchPostgres({ rows: Number(process.argv[2] ?? 1_000_000) })))
}
