// npm run bench [-- --quick] [-- --n 3,5 --l 1000,100000 --reps 3 --budget-s 60]
// Secure masked sum vs a plaintext baseline over the same libp2p connections, every party its own
// process (bench/agent.ts) on 127.0.0.1. Writes bench/results/latest.json and the table in
// bench/README.md. A benchmark, not a test: it measures and records, it asserts nothing.
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpus, totalmem } from 'node:os'
import { execSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { comparePeers } from '../src/crypto/peer.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    n: { type: 'string' },
    l: { type: 'string' },
    reps: { type: 'string' },
    'budget-s': { type: 'string' },
    'no-data': { type: 'boolean', default: false },
    'no-ride-sharing': { type: 'boolean', default: false }
  }
})

const quick = args.quick === true
const Ns = (args.n ?? (quick ? '3,5' : '3,5,10,20')).split(',').map(Number)
const Ls = (args.l ?? (quick ? '1000,100000' : '1000,10000,100000,1000000')).split(',').map(Number)
const reps = Number(args.reps ?? (quick ? 3 : 3))
// a grid cell whose secure run exceeds the budget ends that N's row (documented in bench/README.md)
const budgetS = Number(args['budget-s'] ?? (quick ? 10 : 60))

interface Reply { ok: string; [k: string]: unknown }

class Party {
  readonly proc: ChildProcess
  id = ''
  addr = ''
  private pending: Array<(r: Reply) => void> = []
  constructor() {
    this.proc = fork(fileURLToPath(new URL('./agent.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(this.proc)
    this.proc.on('message', (m: Reply) => this.pending.shift()?.(m))
  }
  ask(m: unknown): Promise<Reply> {
    return new Promise((resolve) => {
      this.pending.push(resolve)
      this.proc.send(m as object)
    })
  }
  next(): Promise<Reply> {
    return new Promise((resolve) => this.pending.push(resolve))
  }
}

interface RunStats { phases: Record<string, number>; wall_ms: number; cpu_s: number; bytes_sent: number; bytes_received: number; peak_array_buffers: number; rss: number; error?: string }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

async function main(): Promise<void> {
  const maxN = Math.max(...Ns)
  const parties = Array.from({ length: maxN + 1 }, () => new Party())
  await Promise.all(parties.map((p) => p.next())) // boot
  for (const p of parties) {
    const r = await p.ask({ cmd: 'init' })
    p.id = String(r.id)
    p.addr = String(r.addr)
  }
  await Promise.all(parties.map((p) => p.ask({ cmd: 'connect', peers: parties.filter((q) => q !== p).map((q) => ({ id: q.id, addr: q.addr })) })))
  if (process.env.BENCH_DEBUG) process.stderr.write(`${parties.length} parties up and introduced\n`)
  const buyer = parties[0] as Party
  let runId = 0
  const rows: Array<Record<string, unknown>> = []

  async function once(N: number, L: number, mode: 'secure' | 'plain'): Promise<{ buyer: RunStats; providers: RunStats[] }> {
    const provs = parties.slice(1, N + 1).sort((a, b) => comparePeers(a.id, b.id))
    const run = ++runId
    const ephemeral: Record<string, string> = {}
    if (mode === 'secure') for (const p of provs) ephemeral[p.id] = String((await p.ask({ cmd: 'ephemeral', run })).pub)
    const params = { session: randomBytes(32).toString('hex'), length: L, providers: provs.map((p) => p.id), buyer: buyer.id, ephemeral }
    const msg = { cmd: 'run', run, mode, params, providers: params.providers, buyer: buyer.id }
    if (process.env.BENCH_DEBUG) process.stderr.write(`run ${run} ${mode} N=${N} L=${L}\n`)
    const [b, ...ps] = await Promise.all([buyer, ...provs].map((p) => p.ask(msg)))
    for (const r of [b, ...ps]) if (r?.error) throw new Error(`${mode} N=${N} L=${L}: ${String(r.error)}`)
    return { buyer: b as unknown as RunStats, providers: ps as unknown as RunStats[] }
  }

  for (const N of Ns) {
    for (const L of Ls) {
      const secure: Array<{ buyer: RunStats; providers: RunStats[] }> = []
      const plain: Array<{ buyer: RunStats; providers: RunStats[] }> = []
      try {
        await once(N, Math.min(L, 1000), 'secure') // warm the connections (the mesh is "already connected")
        for (let i = 0; i < reps; i++) {
          secure.push(await once(N, L, 'secure')) // alternating runs
          plain.push(await once(N, L, 'plain'))
        }
      } catch (e) {
        // a failed cell is a result too: record it and end this N's row
        rows.push({ N, L, error: (e as Error).message })
        process.stderr.write(`N=${N} L=${L}: FAILED ${(e as Error).message}\n`)
        break
      }
      const s = median(secure.map((x) => x.buyer.wall_ms)) / 1000
      const p = median(plain.map((x) => x.buyer.wall_ms)) / 1000
      const bytes = (xs: typeof secure): number => median(xs.map((x) => x.buyer.bytes_received + x.providers.reduce((a, y) => a + y.bytes_sent, 0)))
      const vectorBytes = (xs: typeof secure): number => median(xs.map((x) => x.buyer.bytes_received))
      const row = {
        N, L,
        secure_s: round(s), plain_s: round(p), ratio: round(s / p),
        secure_bytes: bytes(secure), plain_bytes: bytes(plain),
        vector_bytes_ratio: round(vectorBytes(secure) / vectorBytes(plain)),
        cpu_s: { buyer_secure: round(median(secure.map((x) => x.buyer.cpu_s))), provider_secure: round(median(secure.flatMap((x) => x.providers.map((y) => y.cpu_s)))), buyer_plain: round(median(plain.map((x) => x.buyer.cpu_s))), provider_plain: round(median(plain.flatMap((x) => x.providers.map((y) => y.cpu_s)))) },
        buyer_peak_array_buffers: Math.max(...secure.map((x) => x.buyer.peak_array_buffers)),
        vector_bytes: L * 8,
        // last secure run's phase marks, ms from the buyer's start (buyer) / the provider's start (provider 0)
        phases_ms: { buyer: secure.at(-1)?.buyer.phases, provider: secure.at(-1)?.providers[0]?.phases }
      }
      rows.push(row)
      process.stderr.write(`N=${N} L=${L}: secure ${row.secure_s} s, plain ${row.plain_s} s, ratio ${row.ratio}, bytes ${row.secure_bytes}/${row.plain_bytes}\n`)
      if (s > budgetS) {
        process.stderr.write(`N=${N}: L=${L} took ${s.toFixed(1)} s > budget ${budgetS} s; larger L skipped\n`)
        break
      }
    }
  }
  await Promise.all(parties.map((p) => { p.proc.send({ cmd: 'exit' }); return new Promise((r) => p.proc.once('exit', r)) }))

  let data: unknown = null
  if (!args['no-data'] && existsSync(fileURLToPath(new URL('./data.ts', import.meta.url)))) {
    const dataModule = './data.ts' // optional: present once the data layer's bench lands
    const { benchData } = (await import(dataModule)) as { benchData: (o: { rows: number; dir: string }) => Promise<unknown> }
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    data = await benchData({ rows: quick ? 1_000_000 : 10_000_000, dir: mkdtempSync(join(tmpdir(), 'mpc-bench-data-')) })
  }

  // item 3: the ride-sharing queries end to end through the real CLI, company agents already serving
  let rideSharing: unknown = null
  if (!args['no-ride-sharing']) {
    const { spawnSync } = await import('node:child_process')
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const trips = quick ? 50_000 : 200_000
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('../examples/ride-sharing/run.ts', import.meta.url)), '--trips', String(trips), '--workdir', mkdtempSync(join(tmpdir(), 'mpc-bench-rs-'))], { encoding: 'utf8', timeout: 600_000 })
    const queries = [...r.stdout.matchAll(/verified: (\S+) \((\d+) cells, ([\d.]+) s\)/g)].map((m) => ({ query: m[1], cells: Number(m[2]), seconds: Number(m[3]) }))
    rideSharing = { trips_per_company: trips, companies: 3, ok: r.status === 0, queries }
    process.stderr.write(`ride-sharing through the CLI: ${queries.map((q) => `${q.query} ${q.seconds} s`).join(', ')}\n`)
  }

  const env = {
    node: process.version,
    commit: (() => { try { return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim() } catch { return null } })(),
    cpu: cpus()[0]?.model, cores: cpus().length, mem_gib: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString(), quick, reps, budget_s: budgetS
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  const doc = { env, rows, data, ride_sharing: rideSharing }
  writeFileSync(`${dir}latest.json`, JSON.stringify(doc, null, 1) + '\n')
  writeTable(doc)
  process.stdout.write(`wrote bench/results/latest.json and the table in bench/README.md\n`)
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

function writeTable(doc: { env: Record<string, unknown>; rows: Array<Record<string, unknown>>; data: unknown; ride_sharing: unknown }): void {
  const path = fileURLToPath(new URL('./README.md', import.meta.url))
  const md = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\n<!-- results -->\n<!-- /results -->\n'
  const lines = [
    '<!-- results -->',
    `Last run: ${String(doc.env.date)}, commit ${String(doc.env.commit)}, ${String(doc.env.cpu)} × ${String(doc.env.cores)}, Node ${String(doc.env.node)}${doc.env.quick ? ' (--quick)' : ''}.`,
    '',
    '| N | L | secure s | plain s | ratio | secure bytes | plain bytes | buyer peak ArrayBuffers |',
    '|---|---|---|---|---|---|---|---|',
    ...doc.rows.map((r) => (r.error
      ? `| ${String(r.N)} | ${String(r.L)} | failed: ${String(r.error).slice(0, 80)} | | | | | |`
      : `| ${String(r.N)} | ${String(r.L)} | ${String(r.secure_s)} | ${String(r.plain_s)} | ${String(r.ratio)} | ${String(r.secure_bytes)} | ${String(r.plain_bytes)} | ${String(r.buyer_peak_array_buffers)} |`)),
    '',
    doc.data ? `Local aggregation: \`${JSON.stringify(doc.data)}\`` : '',
    doc.ride_sharing ? `Ride-sharing queries through the CLI (agents serving; seconds per \`query run\`, including its process start): \`${JSON.stringify(doc.ride_sharing)}\`` : '',
    '<!-- /results -->'
  ]
  const out = md.replace(/<!-- results -->[\s\S]*<!-- \/results -->/, lines.join('\n'))
  writeFileSync(path, out)
}

const children: ChildProcess[] = []
try {
  await main()
} catch (e) {
  process.stderr.write(`bench failed: ${(e as Error).message}\n`)
  for (const c of children) c.kill('SIGKILL')
  process.exit(1)
}
