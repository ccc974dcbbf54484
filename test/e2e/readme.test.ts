// The finish line of issue #17: follow the README literally. Its "Install" block runs as written
// (npm pack, npm install --prefix, offline from npm's cache) with a fresh $HOME and a PATH whose
// `node` is the system's (20 here); then its walkthrough block runs as a script in an empty folder
// with the installed `mpc-agent` — four homes, separate processes, serve in the background, query
// run, stop — and every cell of its result is compared with a plain computation over the CSV files
// the walkthrough itself wrote. If the README changes, this test runs the new text.
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { bundleEntry } from '../../bin/entry.js'
import { freePort, isAlive } from '../helpers/cli.ts'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The fenced block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in the README. */
function block(name: string): string {
  const m = new RegExp(`<!-- ${name}:begin -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${name}:end -->`).exec(README)
  if (!m?.[1]) throw new Error(`README has no ${name} block`)
  return m[1]
}

function sh(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn('sh', ['-eu', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      rej(new Error(`script timed out after ${timeoutMs} ms:\n${out}`))
    }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(t)
      res({ code, out })
    })
  })
}

const work = mkdtempSync(join(tmpdir(), 'mpc-agent-readme-'))
const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim()
// a PATH as on a fresh machine: the install's bin dir, then the system's (whose node is not Node 24)
const home = join(work, 'home')
const PATH = `${join(home, '.local', 'bin')}:/usr/local/bin:/usr/bin:/bin`
const env = { HOME: home, PATH, npm_config_cache: npmCache, npm_config_offline: 'true', npm_config_update_notifier: 'false', LANG: 'C' }

afterAll(() => {
  // serve processes the walkthrough started, if it failed before stopping them
  const dir = join(work, 'walk')
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.pid'))) {
      const pid = Number(readFileSync(join(dir, f), 'utf8'))
      if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL')
    }
  }
  rmSync(join(ROOT, 'mpc-agent-0.1.0.tgz'), { force: true })
  rmSync(work, { recursive: true, force: true })
})

describe('README, followed literally', () => {
  it('Install: npm pack + npm install --prefix gives an mpc-agent on PATH that runs with the system Node', async () => {
    const r = await sh(block('install'), ROOT, env, 300_000)
    expect(r.code, r.out).toBe(0)
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
    expect(r.out).toContain(version)
    // the node a shell finds on this PATH is not what runs the agent
    const sysNode = execFileSync('sh', ['-c', 'command -v node && node --version'], { env, encoding: 'utf8' })
    expect(sysNode).not.toContain('node_modules')
    // the installed copy runs the bundle it was packed with (bin/entry.js: its sources match, by hash)
    expect(bundleEntry(pathToFileURL(join(home, '.local', 'lib', 'mpc-agent') + '/').href, {}), r.out).not.toBeNull()
  }, 320_000)

  it('the walkthrough: init, entries exchanged, policy, serve in the background, query run, stop', async () => {
    expect(existsSync(join(home, '.local', 'bin', 'mpc-agent')), 'the install test ran first').toBe(true)
    // the README's fixed ports, swapped for free ones so parallel test files cannot collide
    let script = block('walkthrough')
    for (const port of new Set([...script.matchAll(/\/tcp\/(\d{4,5})/g)].map((m) => m[1] as string))) {
      script = script.replaceAll(`/tcp/${port}`, `/tcp/${await freePort()}`)
    }
    const dir = join(work, 'walk')
    execFileSync('mkdir', ['-p', dir])
    const r = await sh(script, dir, { ...env, MPC_AGENT_HOME: join(work, "nowhere") }, 360_000)
    expect(r.code, r.out).toBe(0)

    // a plain computation over the files the walkthrough wrote
    const expected = new Map<number, { trips: number; cents: number }>()
    for (const f of readdirSync(dir).filter((x) => x.endsWith('-trips.csv'))) {
      for (const line of readFileSync(join(dir, f), 'utf8').trim().split('\n').slice(1)) {
        const [zone, fare] = line.split(',').map(Number) as [number, number]
        const e = expected.get(zone) ?? { trips: 0, cents: 0 }
        e.trips++
        e.cents += Math.round(Math.min(100, Math.max(0, fare)) * 100)
        expected.set(zone, e)
      }
    }
    expect(expected.size).toBeGreaterThan(0)
    const rows = readFileSync(join(dir, 'fares.csv'), 'utf8').trim().split('\n')
    expect(rows[0]).toBe('zone,trips,fare')
    const got = new Map(rows.slice(1).map((l) => {
      const [zone, trips, fare] = l.split(',').map(Number) as [number, number, number]
      return [zone, { trips, cents: Math.round(fare * 100) }]
    }))
    expect(got).toEqual(expected)

    // `kill $!` stopped the agents themselves: nothing is left holding a port
    const pids = readdirSync(dir).filter((x) => x.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, f), 'utf8')))
    expect(pids).toHaveLength(3)
    const deadline = Date.now() + 10_000
    while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(pids.filter(isAlive)).toEqual([])
  }, 380_000)
})
