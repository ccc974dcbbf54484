// A real PostgreSQL server for tests (issue 19): `initdb` into a temp directory as the unprivileged
// `postgres` user (tests run as root; Postgres refuses root), listening on a Unix socket in that
// directory and on a free 127.0.0.1 port, stopped by `stop()`. No mocks. Under CI=true a server that
// cannot start is a failure (`startPostgres` throws); elsewhere `pgSkip` says why the tests skip.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { listenPort as freePort } from '../../examples/ride-sharing/ports.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

const BIN = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'].find((d) => existsSync(join(d, 'initdb')))

export interface PgServer {
  port: number
  socketDir: string
  /** Superuser client config over the Unix socket. */
  admin(db?: string): pg.ClientConfig
  /** Connection string of the read-only role `reader` (password auth over TCP loopback). */
  readerUrl(db?: string): string
  /** Run SQL as the superuser. */
  exec(sql: string, params?: unknown[], db?: string): Promise<pg.QueryResult>
  stop(): void
}

/** Why Postgres tests cannot run here, or null. Under CI=true this is never a reason to skip. */
export function pgSkip(): string | null {
  if (process.env.CI === 'true') return null
  if (!BIN) return 'PostgreSQL is not installed (apt-get install postgresql)'
  if (spawnSync('id', ['postgres']).status !== 0) return 'no postgres user to run the server as'
  return null
}

export async function startPostgres(): Promise<PgServer> {
  if (!BIN) throw new Error('PostgreSQL server binaries not found (.ci/run installs Debian postgresql)')
  const dir = mkdtempSync(join(tmpdir(), 'mpc-pg-'))
  chmodSync(dir, 0o755)
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
  chownSync(dir, uid, gid)
  const data = join(dir, 'data')
  const asPg = (cmd: string, args: string[]): void => {
    const r = process.getuid?.() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args], { encoding: 'utf8' }) : spawnSync(join(BIN, cmd), args, { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`)
  }
  asPg('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const port = await freePort()
  asPg('pg_ctl', ['-D', data, '-w', '-t', '60', '-l', join(dir, 'log'), '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, 'start'])
  const stop = (): void => {
    try {
      asPg('pg_ctl', ['-D', data, '-w', '-m', 'immediate', 'stop'])
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const admin = (db = 'postgres'): pg.ClientConfig => ({ host: dir, port, user: 'postgres', database: db })
  const exec = async (sql: string, params: unknown[] = [], db = 'postgres'): Promise<pg.QueryResult> => {
    const c = new pg.Client(admin(db))
    await c.connect()
    try {
      return await c.query(sql, params)
    } finally {
      await c.end()
    }
  }
  try {
    await exec(`CREATE ROLE reader LOGIN PASSWORD 'r3ader pw' NOSUPERUSER`)
  } catch (e) {
    stop()
    throw e
  }
  return { port, socketDir: dir, admin, exec, stop, readerUrl: (db = 'postgres') => `postgresql://reader:${encodeURIComponent('r3ader pw')}@127.0.0.1:${port}/${db}` }
}
