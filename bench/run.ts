// npm run bench [-- --quick] [-- --n 3,5 --l 1000,100000 --reps 3 --budget-s 60 --no-scale --no-data --no-ride-sharing]
//   [-- --privacy-l 100000 --no-privacy --only-privacy]
//   [-- --no-cron --only-cron --cron-reps 5 --cron-trips 200000]
//   [-- --no-protocol-cpu --only-protocol-cpu --protocol-cpu-reps 20]   (bench/protocol-cpu.ts: all parties in one process, no network)
//   [-- --no-netem --only-netem --netem-n 5 --netem-l 1000,100000,1000000 --netem-reps 5 --netem-rtt-ms 40 --netem-mbit 100]
//   [-- --no-relay --relay-reps 2]   (issue 18: relayed vs direct, bench/relay.ts, root only)
// Secure masked sum (after a real negotiation) vs a plaintext baseline over the same libp2p
// connections, every party its own process (bench/agent.ts) on 127.0.0.1. Writes
// bench/results/latest.json and the tables in bench/README.md (bench/report.ts). A benchmark, not a
// test: it measures and records, it asserts nothing. What the timed window is: bench/agent.ts.
import { execSync, fork, spawnSync, type ChildProcess } from 'node:child_process'
import { cpus, tmpdir, totalmem } from 'node:os'
import { mkdirSync, mkdtempSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { comparePeers } from '../src/crypto/peer.ts'
import type { Mode, Reply, Request, RunSpec, RunStats } from './ipc.ts'
import { median, round, summarize, writeTable, yardstick, yardstickText, type Doc, type ErrorRow, type Row, type RowEnv, type RunPair } from './report.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    n: { type: 'string' },
    l: { type: 'string' },
    reps: { type: 'string' },
    'budget-s': { type: 'string' },
    scale: { type: 'boolean', default: false },
    'no-scale': { type: 'boolean', default: false },
    'scale-n': { type: 'string', default: '50' },
    'scale-l': { type: 'string', default: '100000' },
    'scale-reps': { type: 'string', default: '3' },
    'no-data': { type: 'boolean', default: false },
    'no-ride-sharing': { type: 'boolean', default: false },
    // the privacy row: per N, at this one L, the same query with and without its privacy section
    'privacy-l': { type: 'string', default: '100000' },
    'no-privacy': { type: 'boolean', default: false },
    // only the privacy row (no grid, scale, data, ride-sharing or noise sections)
    'only-privacy': { type: 'boolean', default: false },
    // issue 20: the cron row (bench/cron.ts) and the network rows (bench/netem.ts, root only); --only-*
    // runs just that section and updates its key in an existing results/latest.json
    'no-cron': { type: 'boolean', default: false },
    'only-cron': { type: 'boolean', default: false },
    'cron-reps': { type: 'string' },
    'cron-trips': { type: 'string' },
    'no-protocol-cpu': { type: 'boolean', default: false },
    'only-protocol-cpu': { type: 'boolean', default: false },
    'protocol-cpu-reps': { type: 'string' },
    'no-netem': { type: 'boolean', default: false },
    'only-netem': { type: 'boolean', default: false },
    'netem-n': { type: 'string', default: '5' },
    'netem-l': { type: 'string' },
    'netem-reps': { type: 'string' },
    'netem-rtt-ms': { type: 'string', default: '40' },
    'netem-mbit': { type: 'string', default: '100' },
    // issue 18: relayed vs direct runs (bench/relay.ts: N = 3, 5, L = 100k, relay in its own namespace; root only)
    'no-relay': { type: 'boolean', default: false },
    'relay-reps': { type: 'string' },
    // write a V8 CPU profile per party (DIR/<pid>.cpuprofile; party 0 is the buyer, started first)
    'cpu-prof': { type: 'string' },
    merge: { type: 'boolean', default: false },
    report: { type: 'boolean', default: false }
  }
})

const quick = args.quick === true
const onlyPrivacy = args['only-privacy'] === true
const Ns = (args.n ?? (quick ? '3,5' : '3,5,10,20')).split(',').map(Number)
const Ls = (args.l ?? (quick ? '1000,100000' : '1000,10000,100000,1000000')).split(',').map(Number)
const reps = Number(args.reps ?? 3)
// a grid cell whose secure run exceeds the budget ends that N's row (documented in bench/README.md)
const budgetS = Number(args['budget-s'] ?? (quick ? 10 : 60))
// the scale row runs after the full default grid; never with --quick, nor when --n/--l narrow the grid (unless --scale)
const scale = args['no-scale'] || quick ? null
  : args.scale || (args.n === undefined && args.l === undefined) ? { N: Number(args['scale-n']), L: Number(args['scale-l']), reps: Number(args['scale-reps']) } : null
const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

const children: ChildProcess[] = []
const AGENT = fileURLToPath(new URL('./agent.ts', import.meta.url))

class Party {
  readonly proc: ChildProcess
  readonly booted: Promise<void>
  id = ''
  addr = ''
  private seq = 0
  private readonly pending = new Map<number, (r: Reply) => void>()
  constructor() {
    // --expose-gc: every party collects garbage before each run (bench/agent.ts prepare)
    this.proc = fork(AGENT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, '--expose-gc', ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`, `--cpu-prof-name=party-${parties.length + children.length}.cpuprofile`] : [])] })
    children.push(this.proc)
    this.booted = new Promise((resolve, reject) => {
      this.proc.on('message', (m: Reply) => {
        if (m.seq === 0) return resolve()
        this.pending.get(m.seq)?.(m)
        this.pending.delete(m.seq)
      })
      this.proc.once('exit', (code) => {
        reject(new Error(`agent exited (${String(code)}) before it booted`))
        for (const [seq, f] of this.pending) f({ seq, ok: 'exit', error: `agent ${this.id} exited (${String(code)})` })
        this.pending.clear()
      })
    })
  }
  ask(m: Request): Promise<Reply> {
    const seq = ++this.seq
    return new Promise((resolve) => {
      const gone = (): void => resolve({ seq, ok: m.cmd, error: `agent ${this.id} is not running` })
      if (!this.proc.connected) return gone()
      this.pending.set(seq, resolve)
      this.proc.send({ ...m, seq }, (err) => {
        if (err && this.pending.delete(seq)) gone()
      })
    })
  }
  async must(m: Request): Promise<Reply> {
    const r = await this.ask(m)
    if (r.error) throw new Error(`${m.cmd}: ${r.error}`)
    return r
  }
}

/** parties[0] is the buyer, every other party a provider. */
const parties: Party[] = []
const meshes: Array<Record<string, unknown>> = []

/** Start agents up to `total`, allowlist everyone everywhere, and open the mesh's connections. */
async function grow(total: number): Promise<void> {
  if (parties.length >= total) return
  const t0 = performance.now()
  const fresh = Array.from({ length: total - parties.length }, () => new Party())
  await Promise.all(fresh.map((p) => p.booted))
  await Promise.all(fresh.map(async (p) => {
    const r = await p.must({ cmd: 'init' })
    p.id = String(r.id)
    p.addr = String(r.addr)
  }))
  parties.push(...fresh)
  const tBoot = performance.now()
  const peers = parties.map((p) => ({ id: p.id, addr: p.addr }))
  await Promise.all(parties.map((p) => p.must({ cmd: 'connect', peers })))
  // the buyer dials every provider; each provider dials the higher ones (the direction the runs use),
  // one party at a time so 2 cores are not swamped with handshakes
  const failed: string[] = []
  for (const [i, p] of parties.entries()) {
    const targets = parties.slice(1).filter((q) => q !== p && (i === 0 || comparePeers(p.id, q.id) < 0)).map((q) => q.id)
    failed.push(...((await p.must({ cmd: 'dial', peers: targets, concurrency: 8 })).failed as string[]))
  }
  const connections = (await Promise.all(parties.map((p) => p.must({ cmd: 'dial', peers: [], concurrency: 1 })))).map((r) => Number(r.connections))
  const mesh = { processes: parties.length, boot_s: round((tBoot - t0) / 1000, 1), dial_s: round((performance.now() - tBoot) / 1000, 1), connections_min: Math.min(...connections), connections_max: Math.max(...connections), failed }
  meshes.push(mesh)
  log(`${parties.length} agents up in ${mesh.boot_s} s, mesh dialled in ${mesh.dial_s} s (${mesh.connections_min}–${mesh.connections_max} connections per agent)${failed.length ? `; ${failed.length} dials FAILED: ${failed.slice(0, 3).join('; ')}` : ''}`)
}

/** Ask an agent to stop its node and exit; kill it if it has not within 5 s (or is already gone). */
function stop(p: Party): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.proc.kill('SIGKILL'), 5000)
    p.proc.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    try {
      p.proc.send({ cmd: 'exit', seq: -1 })
    } catch {
      p.proc.kill('SIGKILL')
    }
  })
}

let runId = 0
/** Longer than any phase deadline of the bench query (30 + 120 + 30 s) plus stream waits. */
const RUN_WATCHDOG_S = 400

/** One run: prepare (outside the window) → providers armed → the buyer's run → the providers' stats. */
async function once(N: number, L: number, mode: Mode, sampleMemory: RunSpec['sampleMemory'] = 'none'): Promise<RunPair> {
  const buyer = parties[0] as Party
  const provs = parties.slice(1, N + 1).sort((a, b) => comparePeers(a.id, b.id))
  const spec: RunSpec = { run: ++runId, mode, length: L, providers: provs.map((p) => p.id), buyer: buyer.id, sampleMemory }
  if (process.env.BENCH_DEBUG) log(`run ${spec.run} ${mode} N=${N} L=${L}`)
  await Promise.all([buyer, ...provs].map((p, i) => p.must({ cmd: 'prepare', run: spec.run, length: L, seed: i === 0 ? null : i - 1 })))
  await Promise.all(provs.map((p) => p.must({ cmd: 'arm', ...spec })))
  // a watchdog: a run that never ends (a bench or product bug) becomes a failed cell, not a hung bench
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run ${spec.run} did not end within ${RUN_WATCHDOG_S} s`)), RUN_WATCHDOG_S * 1000)
  })
  const [b, ps] = await Promise.race([
    Promise.all([buyer.ask({ cmd: 'run', ...spec }), Promise.all(provs.map((p) => p.ask({ cmd: 'collect', run: spec.run })))]),
    watchdog
  ]).finally(() => clearTimeout(timer))
  const err = [b, ...ps].find((r) => r.error)
  if (err) throw new Error(`${mode} N=${N} L=${L}: ${String(err.error)}`)
  return { buyer: b.stats as RunStats, providers: ps.map((r) => r.stats as RunStats) }
}

/**
 * A grid cell: one small warm-up run (all connections and streams exist), then alternating timed
 * runs, then one secure and one plaintext run that sample memory (and are not timed).
 */
async function cell(N: number, L: number, n: number, env: RowEnv): Promise<Row | ErrorRow> {
  const secure: RunPair[] = []
  const plain: RunPair[] = []
  const memory: RunPair[] = []
  try {
    await once(N, Math.min(L, 1000), 'secure')
    for (let i = 0; i < n; i++) {
      secure.push(await once(N, L, 'secure'))
      plain.push(await once(N, L, 'plain'))
    }
    // memory runs, untimed: peaks with garbage (5 ms samples), then live sets (gc() + sample every 25 ms)
    memory.push(await once(N, L, 'secure', 'peak'), await once(N, L, 'plain', 'peak'), await once(N, L, 'secure', 'live'))
  } catch (e) {
    log(`N=${N} L=${L}: FAILED ${(e as Error).message}`)
    return { N, L, error: (e as Error).message }
  }
  const row = summarize(N, L, secure, plain, { secure: memory[0] as RunPair, plain: memory[1] as RunPair, live: memory[2] as RunPair }, env)
  const y = yardstickText(yardstick(N, L, row.secure_s))
  log(`N=${N} L=${L}: secure ${row.secure_s} s, plain ${row.plain_s} s, ratio ${row.ratio}, bytes ${row.secure_bytes}/${row.plain_bytes}, negotiation ${row.phases_ms.negotiation} ms, buyer live ${row.buyer_live_mb} MB = ${row.buyer_live_vectors} vectors${y ? ` | ${y}` : ''}`)
  return row
}

/** The privacy row's cell (bench/README.md): alternating secure runs without and with the privacy section. */
interface PrivacyRow { N: number; L: number; reps: number; secure_s: number; private_s: number; ratio: number; noise_ms: number; noise_ns_per_cell: number }
async function privacyCell(N: number, L: number, n: number): Promise<PrivacyRow | ErrorRow> {
  const plain: RunPair[] = []
  const priv: RunPair[] = []
  try {
    await once(N, Math.min(L, 1000), 'private')
    for (let i = 0; i < n; i++) {
      plain.push(await once(N, L, 'secure'))
      priv.push(await once(N, L, 'private'))
    }
  } catch (e) {
    log(`privacy N=${N} L=${L}: FAILED ${(e as Error).message}`)
    return { N, L, error: (e as Error).message }
  }
  const wall = (xs: RunPair[]): number => median(xs.map((x) => x.buyer.wall_ms)) / 1000
  // the slowest provider's sampler time of each run, median over runs
  const noiseMs = median(priv.map((x) => Math.max(...x.providers.map((p) => p.stats?.noiseMs ?? 0))))
  const row = { N, L, reps: n, secure_s: round(wall(plain), 3), private_s: round(wall(priv), 3), ratio: round(wall(priv) / wall(plain), 2), noise_ms: round(noiseMs, 1), noise_ns_per_cell: Math.round((noiseMs * 1e6) / L) }
  log(`privacy N=${N} L=${L}: without ${row.secure_s} s, with ${row.private_s} s, ratio ${row.ratio}, noise ${row.noise_ms} ms per provider = ${row.noise_ns_per_cell} ns/cell`)
  return row
}

async function main(): Promise<void> {
  const tStart = performance.now()
  const sections: Record<string, number> = {}
  const section = (k: string, since: number): void => {
    sections[k] = round((performance.now() - since) / 1000, 1)
  }
  const git = (cmd: string): string | null => {
    try {
      return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return null
    }
  }
  const rowEnv: RowEnv = { node: process.version, commit: git('git rev-parse --short HEAD'), cpu: cpus()[0]?.model }
  if (args['only-cron'] || args['only-netem'] || args['only-protocol-cpu']) return issue20Only(rowEnv, git)
  if (args.report) return report()

  let t = performance.now()
  await grow(Math.max(...Ns) + 1)
  const rows: Array<Row | ErrorRow> = []
  for (const N of onlyPrivacy ? [] : Ns) {
    for (const L of Ls) {
      const row = await cell(N, L, reps, rowEnv)
      rows.push(row)
      if ('error' in row) break // a failed cell is a result too; it ends this N's row
      if (row.secure_s > budgetS) {
        log(`N=${N}: L=${L} took ${row.secure_s} s > budget ${budgetS} s; larger L skipped`)
        break
      }
    }
  }
  section('grid', t)

  const privacyRows: Array<PrivacyRow | ErrorRow> = []
  if (!args['no-privacy']) {
    t = performance.now()
    const L = Number(args['privacy-l'])
    for (const N of Ns) privacyRows.push(await privacyCell(N, L, reps))
    section('privacy', t)
  }
  if (onlyPrivacy) {
    await Promise.all(parties.map(stop))
    const dir = fileURLToPath(new URL('./results/', import.meta.url))
    mkdirSync(dir, { recursive: true })
    writeFileSync(`${dir}privacy.json`, JSON.stringify({ env: { ...rowEnv, date: new Date().toISOString(), reps, sections_s: sections }, privacy: privacyRows }, null, 1) + '\n')
    process.stdout.write('wrote bench/results/privacy.json (the privacy row only)\n')
    return
  }

  let scaleRow: Row | ErrorRow | null = null
  if (scale) {
    t = performance.now()
    try {
      await grow(scale.N + 1)
      scaleRow = await cell(scale.N, scale.L, scale.reps, rowEnv)
    } catch (e) {
      scaleRow = { N: scale.N, L: scale.L, error: `set-up: ${(e as Error).message}` }
      log(`scale N=${scale.N}: FAILED ${(e as Error).message}`)
    }
    section('scale', t)
  }
  await Promise.all(parties.map(stop))

  let data: unknown = null
  if (!args['no-data']) {
    t = performance.now()
    const { benchData } = await import('./data.ts')
    data = await benchData({ rows: quick ? 1_000_000 : 10_000_000, dir: mkdtempSync(join(tmpdir(), 'mpc-bench-data-')) })
    section('data', t)
    // issue 19: the same kind of query in PostgreSQL, agent vs psql (a server started for the bench)
    t = performance.now()
    const pgRows = quick ? 1_000_000 : 10_000_000
    const postgres = await (await import('./postgres.ts')).benchPostgres({ rows: pgRows }).catch((e: unknown) => ({ rows: pgRows, error: (e as Error).message.split('\n')[0] }))
    data = { ...(data as object), postgres }
    log(`postgres ${pgRows} rows: ${JSON.stringify(postgres)}`)
    section('postgres', t)
  }

  // the ride-sharing queries end to end through the real CLI, company agents already serving
  let rideSharing: unknown = null
  if (!args['no-ride-sharing']) {
    t = performance.now()
    const trips = quick ? 20_000 : 200_000
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('../examples/ride-sharing/run.ts', import.meta.url)), '--trips', String(trips), '--workdir', mkdtempSync(join(tmpdir(), 'mpc-bench-rs-'))], { encoding: 'utf8', timeout: 600_000 })
    const queries = [...r.stdout.matchAll(/verified: (\S+) \((\d+) cells, ([\d.]+) s\)/g)].map((m) => ({ query: m[1], cells: Number(m[2]), seconds: Number(m[3]) }))
    rideSharing = { trips_per_company: trips, companies: 3, ok: r.status === 0, queries }
    log(`ride-sharing through the CLI: ${queries.map((q) => `${q.query} ${q.seconds} s`).join(', ')}`)
    section('ride_sharing', t)
  }
  const { cron, netem, protocolCpu } = await issue20Sections(rowEnv, sections, !args['no-cron'], !args['no-netem'], !args['no-protocol-cpu'])
  const relay = relaySection(sections)
  ;(await import('./noise.ts')).benchNoise({ log }) // DP noise per cell per provider → results/noise.json (protocols/privacy.md §6)
  section('total', tStart)

  const env = {
    ...rowEnv,
    dirty: (git('git status --porcelain') ?? '') !== '',
    cores: cpus().length, mem_gib: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString(), quick, reps, budget_s: budgetS, sections_s: sections, mesh: meshes
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  const fresh = { env, rows, privacy: privacyRows, scale: scaleRow, data, ride_sharing: rideSharing, cron, netem, protocol_cpu: protocolCpu, relay }
  const prev = args.merge && existsSync(`${dir}latest.json`) ? JSON.parse(readFileSync(`${dir}latest.json`, 'utf8')) as Doc & Record<string, unknown> : null
  const doc = prev ? mergeDocs(prev, fresh) : fresh
  writeFileSync(`${dir}latest.json`, JSON.stringify(doc, null, 1) + '\n')
  await writeTables(doc)
  process.stdout.write(`wrote bench/results/latest.json and the tables in bench/README.md (${sections.total} s: ${JSON.stringify(sections)})\n`)
}

// ---- issue 20: the cron row, the network rows and the protocol's own CPU (bench/cron.ts, bench/netem.ts, bench/protocol-cpu.ts) ----

async function issue20Sections(env: RowEnv, sections: Record<string, number>, doCron: boolean, doNetem: boolean, doProtocolCpu: boolean): Promise<{ cron: unknown; netem: unknown; protocolCpu: unknown }> {
  let cron: unknown = null
  let netem: unknown = null
  let protocolCpu: unknown = null
  if (doProtocolCpu) {
    const t = performance.now()
    protocolCpu = (await import('./protocol-cpu.ts')).benchProtocolCpu({ Ns: quick ? [5, 10] : [5, 10, 20], L: 1000, reps: Number(args['protocol-cpu-reps'] ?? (quick ? 5 : 20)), log })
    sections.protocol_cpu = round((performance.now() - t) / 1000, 1)
  }
  if (doCron) {
    const t = performance.now()
    cron = await (await import('./cron.ts')).benchCron({ reps: Number(args['cron-reps'] ?? (quick ? 3 : 5)), trips: Number(args['cron-trips'] ?? (quick ? 20_000 : 200_000)), log })
      .catch((e: unknown) => ({ error: (e as Error).message }))
    sections.cron = round((performance.now() - t) / 1000, 1)
  }
  if (doNetem) {
    const t = performance.now()
    const { benchNetem, protocolRoundTrips } = await import('./netem.ts')
    const rt = protocolRoundTrips()
    netem = await benchNetem({
      N: Number(args['netem-n']), Ls: (args['netem-l'] ?? (quick ? '1000,100000' : '1000,100000,1000000')).split(',').map(Number),
      reps: Number(args['netem-reps'] ?? (quick ? 3 : 5)), rttMs: Number(args['netem-rtt-ms']), mbit: Number(args['netem-mbit']),
      protocolRoundTrips: rt.count, protocolRoundTripsTotal: rt.total, protocolRoundTripsSource: rt.source, env, log
    })
    sections.netem = round((performance.now() - t) / 1000, 1)
  }
  return { cron, netem, protocolCpu }
}

/** The results block of bench/README.md: the grid's tables, then the cron, network and relayed rows. */
async function writeTables(doc: Doc & { relay?: unknown }): Promise<void> {
  writeTable(doc, [...await issue20Lines(doc), ...relayLines((doc.relay ?? null) as RelayDoc | null)])
}

async function issue20Lines(doc: { cron?: unknown; netem?: unknown; protocol_cpu?: unknown }): Promise<string[]> {
  return [...(await import('./cron.ts')).cronLines(doc.cron), ...(await import('./protocol-cpu.ts')).protocolCpuLines(doc.protocol_cpu), ...(await import('./netem.ts')).netemLines(doc.netem)]
}

// ---- issue 18: relayed vs direct (bench/relay.ts runs as its own process: it builds namespaces) ----

interface RelayMode { total_ms: number; masked_sum_ms: number; buyer_mb: number; relay_mb: number }
interface RelayDoc { when: string; reps: number; rows: Array<{ N: number; L: number; direct: RelayMode; relayed: RelayMode }> }

function relaySection(sections: Record<string, number>): RelayDoc | null {
  if (args['no-relay']) return null
  if (process.getuid?.() !== 0) {
    log('relayed rows skipped: they build network namespaces, which needs root')
    return null
  }
  const t = performance.now()
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('./relay.ts', import.meta.url)), '--reps', args['relay-reps'] ?? (quick ? '1' : '2')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 30 * 60_000 })
  sections.relay = round((performance.now() - t) / 1000, 1)
  if (r.status !== 0) {
    log(`relayed rows failed (exit ${String(r.status)}); see the output above`)
    return null
  }
  return JSON.parse(readFileSync(fileURLToPath(new URL('./results/relay.json', import.meta.url)), 'utf8')) as RelayDoc
}

function relayLines(relay: RelayDoc | null): string[] {
  if (!relay) return []
  return ['', `Relayed rows (bench/relay.ts, ${relay.when}: the same query through the CLI, direct vs through a relay in its own namespace; query run's own timings without process start, median of ${relay.reps}; bytes on the buyer's and the relay's interfaces):`, '',
    '| N | L | direct total ms | relayed total ms | direct masked sum ms | relayed masked sum ms | buyer MB direct / relayed | relay MB |', '|---|---|---|---|---|---|---|---|',
    ...relay.rows.map((x) => `| ${x.N} | ${x.L} | ${x.direct.total_ms} | ${x.relayed.total_ms} | ${x.direct.masked_sum_ms} | ${x.relayed.masked_sum_ms} | ${x.direct.buyer_mb} / ${x.relayed.buyer_mb} | ${x.relayed.relay_mb} |`), '']
}

/**
 * --merge: this run's grid rows replace the recorded rows with the same N and L (the others stay, each
 * with its own `env`), and every section this run left out keeps its recorded value.
 */
function mergeDocs<T extends Doc & Record<string, unknown>>(prev: Doc & Record<string, unknown>, next: T): T {
  const key = (r: { N: number; L: number }): string => `${r.N}/${r.L}`
  const mine = new Set(next.rows.map(key))
  const rows = [...prev.rows.filter((r) => !mine.has(key(r))), ...next.rows].sort((a, b) => a.N - b.N || a.L - b.L)
  const out: Record<string, unknown> = { ...prev, ...next, rows, env: { ...next.env, merged_with_run_of: prev.env?.date ?? null } }
  for (const k of ['privacy', 'scale', 'data', 'ride_sharing', 'cron', 'netem', 'protocol_cpu', 'relay']) {
    const v = next[k]
    if (v === null || v === undefined || (Array.isArray(v) && v.length === 0)) out[k] = prev[k]
  }
  return out as T
}

/** --report: rewrite the tables in bench/README.md from results/latest.json, measuring nothing. */
async function report(): Promise<void> {
  const file = fileURLToPath(new URL('./results/latest.json', import.meta.url))
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Doc & Record<string, unknown>
  await writeTables(doc)
  process.stdout.write('rewrote the tables in bench/README.md from bench/results/latest.json\n')
}

/** --only-cron / --only-netem / --only-protocol-cpu: run those sections alone; their keys replace the ones in results/latest.json. */
async function issue20Only(env: RowEnv, git: (cmd: string) => string | null): Promise<void> {
  const sections: Record<string, number> = {}
  const got = await issue20Sections(env, sections, args['only-cron'] === true, args['only-netem'] === true, args['only-protocol-cpu'] === true)
  const file = fileURLToPath(new URL('./results/latest.json', import.meta.url))
  const doc = (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { env: {}, rows: [], scale: null, data: null, ride_sharing: null }) as Doc & Record<string, unknown>
  const stamp = { date: new Date().toISOString(), commit: env.commit, dirty: (git('git status --porcelain') ?? '') !== '', seconds: sections }
  if (args['only-cron']) Object.assign(doc, { cron: got.cron, cron_env: stamp })
  if (args['only-netem']) Object.assign(doc, { netem: got.netem, netem_env: stamp })
  if (args['only-protocol-cpu']) Object.assign(doc, { protocol_cpu: got.protocolCpu, protocol_cpu_env: stamp })
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(doc, null, 1) + '\n')
  await writeTables(doc)
  const updated = [args['only-cron'] ? 'cron' : '', args['only-netem'] ? 'netem' : '', args['only-protocol-cpu'] ? 'protocol_cpu' : ''].filter(Boolean).join(' and ')
  process.stdout.write(`updated ${updated} in bench/results/latest.json and bench/README.md (${JSON.stringify(sections)})\n`)
}

try {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing`)
  await main()
} catch (e) {
  log(`bench failed: ${(e as Error).message}`)
  for (const c of children) c.kill('SIGKILL')
  process.exit(1)
}
