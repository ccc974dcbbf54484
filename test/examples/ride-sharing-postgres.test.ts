// Issue 19 finish line: the ride-sharing study with every company's trips in PostgreSQL
// (`--source postgres`), against a real server this test starts; every query verified against
// independent SQL over the Parquet files the tables were loaded from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pgSkip, startPostgres, type PgServer } from '../helpers/postgres.ts'

const RUN = fileURLToPath(new URL('../../examples/ride-sharing/run.ts', import.meta.url))

describe.skipIf(pgSkip() !== null)('ride-sharing example --source postgres', () => {
  const work = mkdtempSync(join(tmpdir(), 'mpc-rs-pg-'))
  let srv: PgServer
  let stdout = ''
  beforeAll(async () => {
    srv = await startPostgres()
    await srv.exec(`CREATE ROLE loader LOGIN PASSWORD 'l0ader'`)
    await srv.exec('CREATE DATABASE rides OWNER loader')
    const url = `postgresql://loader:l0ader@127.0.0.1:${srv.port}/rides`
    const r = spawnSync(process.execPath, [RUN, '--trips', '3000', '--workdir', work, '--source', 'postgres'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, MPC_EXAMPLE_PG_URL: url } })
    stdout = r.stdout
    if (r.status !== 0) throw new Error(`example failed (${String(r.status)}): ${r.stderr}\n${r.stdout}`)
  }, 360_000)
  afterAll(() => {
    srv?.stop()
    rmSync(work, { recursive: true, force: true })
  })

  it('loads the trips into PostgreSQL and verifies every query', () => {
    expect(stdout).toMatch(/loaded every company's trips into PostgreSQL/)
    for (const q of ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour']) expect(stdout).toContain(`verified: ${q}`)
  })

  it('--source postgres without MPC_EXAMPLE_PG_URL fails with one line', () => {
    const env = { ...process.env }
    delete env.MPC_EXAMPLE_PG_URL
    const r = spawnSync(process.execPath, [RUN, '--source', 'postgres'], { encoding: 'utf8', timeout: 30_000, env })
    expect(r.status).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/MPC_EXAMPLE_PG_URL/)
  })
})
