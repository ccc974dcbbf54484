// The cron row (issue 20): a scheduled job's whole `query run` process, as cron starts it. The
// ride-sharing study (examples/ride-sharing/run.ts --keep) sets up the city and three companies; the
// companies then serve, each its own process, and the city's 263-cell query (mean-fare-rush: trips
// and mean fare per pickup zone in rush hours) runs through the installed launcher bin/mpc-agent,
// a fresh buyer process every time, stdin/stdout/stderr not a terminal (nothing to reuse between runs
// but the compile cache on disk, as for a real cron job).
//
// Recorded (bench/results/latest.json `cron`, or cron.json with --only-cron):
//   wall_s      spawn → the process exited, median of --reps runs (human output, as cron runs it)
//   cold_s      the first run, with an empty compile cache (a cron job's first run after an install)
//   no_cache_s  median with NODE_DISABLE_COMPILE_CACHE=1 (what the cache saves)
//   phases_ms   medians over as many --json runs, from the arrival of each NDJSON event at this process:
//               start-up (spawn → first event: launcher, Node, modules, config, query, node started),
//               dial (→ negotiation starts), negotiate (→ agreement), masked_sum (→ result in memory,
//               REVEALs applied), write (→ result event: result + provenance written, audit appended),
//               exit (→ the process is gone: node stopped, exit)
// Standalone: node bench/cron.ts [--reps 5] [--trips 200000] [--workdir DIR (kept by an earlier BENCH_KEEP=1 run)]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { MAX_PROPOSALS_PER_PEER_PER_MINUTE } from '../src/agent/limits.ts'

const LAUNCHER = fileURLToPath(new URL('../bin/mpc-agent', import.meta.url))
const EXAMPLE = fileURLToPath(new URL('../examples/ride-sharing/run.ts', import.meta.url))
const QUERY = 'mean-fare-rush'
const COMPANIES = ['alpha', 'beta', 'gamma']

export interface CronRow {
  query: string
  cells: number
  providers: number
  trips_per_company: number
  reps: number
  wall_s: number
  wall_all_s: number[]
  /** the buyer's CPU seconds (user + system), median; null without /usr/bin/time */
  cpu_s: number | null
  no_cache_cpu_s: number | null
  cold_s: number
  no_cache_s: number
  json_wall_s: number
  phases_ms: Record<string, number>
  /** load averages (1, 5, 15 min) before and after: this machine is shared */
  loadavg: { start: number[]; end: number[] }
  /** the targets of issue 20 */
  target_s: number
  met: boolean
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000

interface Timed { wall_ms: number; cpu_s: number | null; code: number | null; stderr: string; events: Array<{ t: number; e: Record<string, unknown> }> }

/** Between the starts of two runs: serve refuses more proposals per minute from one peer than this allows. */
const PACE_MS = Math.ceil(60_000 / MAX_PROPOSALS_PER_PEER_PER_MINUTE) + 100

/** CPU seconds (user + system) of each buyer process, through /usr/bin/time when it is installed (~1 ms of exec). */
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null

/** One buyer process from spawn to exit; with --json, each event stamped on arrival. */
function runBuyer(home: string, query: string, out: string, env: NodeJS.ProcessEnv, json: boolean): Promise<Timed> {
  return new Promise((resolve) => {
    const args = ['--home', home, ...(json ? ['--json'] : []), 'query', 'run', query, '--out', out, '--timeout', '120']
    const cpuFile = `${out}.cpu`
    const t0 = performance.now()
    const p = TIME ? spawn(TIME, ['-o', cpuFile, '-f', '%U %S', LAUNCHER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(LAUNCHER, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const events: Timed['events'] = []
    let buf = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      const t = performance.now() - t0
      buf += d
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (json && line.startsWith('{')) events.push({ t, e: JSON.parse(line) as Record<string, unknown> })
      }
    })
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    // 'exit', not 'close': the wall time of the process itself
    p.on('exit', (code) => {
      const wall_ms = performance.now() - t0
      let cpu_s: number | null = null
      if (TIME) {
        const f = readFileSync(cpuFile, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? []
        cpu_s = (f[0] ?? NaN) + (f[1] ?? NaN)
        rmSync(cpuFile, { force: true })
      }
      resolve({ wall_ms, cpu_s, code, stderr, events })
    })
  })
}

/** Phase durations of one --json run (see the header). */
function phasesOf(r: Timed): Record<string, number> {
  const at = (f: (e: Record<string, unknown>) => boolean): number => {
    const x = r.events.find((ev) => f(ev.e))
    if (!x) throw new Error(`event missing from the --json run: ${f.toString()}`)
    return x.t
  }
  const first = (r.events[0] as { t: number }).t
  const negStart = at((e) => e.type === 'phase' && e.phase === 'negotiate' && e.state === 'start')
  const negDone = at((e) => e.type === 'phase' && e.phase === 'negotiate' && e.state === 'done')
  const confirmed = at((e) => e.type === 'phase' && e.phase === 'confirm' && e.state === 'done')
  const result = at((e) => e.type === 'result')
  return { startup: first, dial: negStart - first, negotiate: negDone - negStart, masked_sum: confirmed - negDone, write: result - confirmed, exit: r.wall_ms - result }
}

export async function benchCron(o: { reps: number; trips: number; log: (l: string) => void; workdir?: string }): Promise<CronRow> {
  // --workdir: a directory an earlier run kept (BENCH_KEEP=1): the study is not set up again, nor removed
  const reuse = o.workdir !== undefined && existsSync(join(o.workdir, 'homes'))
  const work = reuse ? o.workdir as string : mkdtempSync(join(tmpdir(), 'mpc-bench-cron-'))
  const servers: ChildProcess[] = []
  const stopServers = (): void => {
    for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGTERM')
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    stopServers()
    if (!reuse) rmSync(work, { recursive: true, force: true })
    process.exit(sig === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // 1. the study's homes, data and queries (its own four queries run once and are verified)
    const setup = reuse ? { status: 0, stderr: '', stdout: '' } : spawnSync(process.execPath, [EXAMPLE, '--trips', String(o.trips), '--keep', '--workdir', work], { encoding: 'utf8', timeout: 900_000 })
    if (setup.status !== 0) throw new Error(`ride-sharing set-up failed: ${(setup.stderr || setup.stdout).trim().split('\n').slice(-3).join(' ')}`)
    const homes = join(work, 'homes')
    // many runs of the same query in a row: lift the example policy's daily run limit (50)
    for (const c of COMPANIES) {
      const f = join(homes, c, 'policy.yaml')
      writeFileSync(f, readFileSync(f, 'utf8').replace(/max_runs_per_buyer_per_day: \d+/, 'max_runs_per_buyer_per_day: 100000'))
    }
    // 2. the companies serve (each its own process, waited for by its ready file)
    for (const c of COMPANIES) {
      const ready = join(work, `${c}.serve.json`)
      rmSync(ready, { force: true })
      servers.push(spawn(LAUNCHER, ['--home', join(homes, c), 'serve', '--ready-file', ready], { stdio: ['ignore', 'ignore', 'ignore'] }))
    }
    const until = Date.now() + 60_000
    while (!COMPANIES.every((c) => existsSync(join(work, `${c}.serve.json`)))) {
      if (servers.some((s) => s.exitCode !== null)) throw new Error('a company agent exited before it was ready')
      if (Date.now() > until) throw new Error('company agents not ready within 60 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    // 3. the city's cron job: a fresh process per run; its own compile cache directory, empty at first
    const query = join(work, 'queries', `${QUERY}.yaml`)
    const out = join(work, 'cron.json')
    const city = join(homes, 'city')
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: join(work, 'cache') }
    delete env.NODE_COMPILE_CACHE
    // the providers accept at most MAX_PROPOSALS_PER_PEER_PER_MINUTE proposals a minute from one peer (serve's
    // rate limit): a run starts at least PACE_MS after the previous one, outside the timed span, or fast runs are refused
    let lastStart = -Infinity
    const must = async (json: boolean, e = env): Promise<Timed> => {
      const wait = lastStart + PACE_MS - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      lastStart = performance.now()
      const r = await runBuyer(city, query, out, e, json)
      if (r.code !== 0) throw new Error(`query run exited ${String(r.code)}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`)
      return r
    }
    const load0 = loadavg().map((x) => Math.round(x * 10) / 10)
    const cold = await must(false)
    const cells = (JSON.parse(readFileSync(out, 'utf8')) as { cells: unknown[] }).cells.length
    const wall: number[] = []
    const cpu: number[] = []
    const noCache: number[] = []
    const noCacheCpu: number[] = []
    const json: Timed[] = []
    for (let i = 0; i < o.reps; i++) {
      const w = await must(false)
      wall.push(w.wall_ms)
      if (w.cpu_s !== null) cpu.push(w.cpu_s)
      json.push(await must(true))
      const n = await must(false, { ...env, NODE_DISABLE_COMPILE_CACHE: '1' })
      noCache.push(n.wall_ms)
      if (n.cpu_s !== null) noCacheCpu.push(n.cpu_s)
    }
    const phases = json.map(phasesOf)
    const phases_ms = Object.fromEntries(Object.keys(phases[0] ?? {}).map((k) => [k, Math.round(median(phases.map((p) => p[k] as number)))]))
    const wall_s = r3(median(wall) / 1000)
    const row: CronRow = {
      query: QUERY, cells, providers: COMPANIES.length, trips_per_company: o.trips, reps: o.reps,
      wall_s, wall_all_s: wall.map((w) => r3(w / 1000)),
      cpu_s: cpu.length ? r3(median(cpu)) : null, no_cache_cpu_s: noCacheCpu.length ? r3(median(noCacheCpu)) : null, cold_s: r3(cold.wall_ms / 1000), no_cache_s: r3(median(noCache) / 1000),
      json_wall_s: r3(median(json.map((j) => j.wall_ms)) / 1000), phases_ms,
      loadavg: { start: load0, end: loadavg().map((x) => Math.round(x * 10) / 10) }, target_s: 0.35, met: wall_s <= 0.35
    }
    o.log(`cron: ${QUERY} (${cells} cells, ${COMPANIES.length} providers): ${wall_s} s wall, ${String(row.cpu_s)} s CPU (median of ${o.reps}; cold ${row.cold_s} s, no compile cache ${row.no_cache_s} s, ${String(row.no_cache_cpu_s)} s CPU); phases ms ${JSON.stringify(phases_ms)}`)
    return row
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    stopServers()
    await Promise.all(servers.map((s) => s.exitCode !== null || s.signalCode !== null ? null : new Promise((r) => {
      const t = setTimeout(() => s.kill('SIGKILL'), 5000)
      s.once('exit', () => r(clearTimeout(t)))
    })))
    if (!process.env.BENCH_KEEP && !reuse) rmSync(work, { recursive: true, force: true })
    else o.log(`cron: kept ${work}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, trips: { type: 'string', default: '200000' }, workdir: { type: 'string' } } })
  const row = await benchCron({ reps: Number(values.reps), trips: Number(values.trips), ...(values.workdir ? { workdir: values.workdir } : {}), log: (l) => process.stderr.write(l + '\n') })
  process.stdout.write(JSON.stringify(row) + '\n')
}

/** The cron row as markdown for bench/README.md's results block. */
export function cronLines(cron: unknown): string[] {
  const c = cron as (CronRow & { error?: undefined }) | { error: string } | null | undefined
  if (!c) return []
  if (c.error !== undefined) return ['', `Cron row: failed: ${c.error}`]
  const r = c as CronRow
  return ['', `Cron row (bench/cron.ts: \`query run\` of ${r.query}, ${r.cells} cells, ${r.providers} providers serving, ${r.trips_per_company} trips each; a fresh buyer process through bin/mpc-agent per run, runs started ≥ ${PACE_MS / 1000} s apart (serve's proposal rate limit), median of ${r.reps}; load average ${r.loadavg.start.join(' ')} → ${r.loadavg.end.join(' ')} on 2 shared cores):`, '',
    '| wall s | CPU s | first run, empty compile cache, s | no compile cache: wall s (CPU s) | target | phases ms (--json runs: start-up, dial, negotiate, masked sum, write, exit) |', '|---|---|---|---|---|---|',
    `| ${r.wall_s} | ${String(r.cpu_s)} | ${r.cold_s} | ${r.no_cache_s} (${String(r.no_cache_cpu_s)}) | ≤ ${r.target_s}: ${r.met ? 'met' : 'not met'} | ${Object.values(r.phases_ms).join(' / ')} |`]
}
