// The network rows (issue 20): every party in its own network namespace, links shaped and delayed,
// secure vs plaintext over the same links. Bench only (root, iproute2's `ip` and `tc`); never in CI.
//
// The lab: a bridge in a namespace of its own and one namespace per party, joined by veth pairs, at
// 10.77.0.<i + 2>/24 (addresses only inside these namespaces). Bandwidth: an htb class of `mbit` on
// both ends of each party's veth (its upload leaves through its own end, its download through the
// bridge's end), so every party has `mbit` up and `mbit` down. Delay (this kernel has no netem): the
// party's agent listens on 127.0.0.1 inside its namespace and a delay proxy (bench/delay-proxy.ts)
// on its public address forwards every connection to it, holding each chunk RTT/2 in each direction;
// every connection between two parties passes exactly one proxy (the listener's): round trip = RTT.
// The checks before the rows (calibrate()): 1-byte TCP ping-pongs and bulk transfers through the
// same proxies and shapers, recorded in the output as `link`.
//
// Rows: as the grid's (bench/report.ts summarize(), memory fields dropped: no memory runs here) plus
// rtt_ms, mbit, round_trips { implied: (secure − plain) / RTT, protocol: the spec's count },
// bound_s (1.05 × plain + protocol round trips × RTT) and met. Standalone:
//   node bench/netem.ts [--n 5] [--l 1000,100000,1000000] [--reps 5] [--rtt-ms 40] [--mbit 100] [--protocol-rt EXTRA]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { comparePeers } from '../src/crypto/peer.ts'
import type { Mode, Reply, Request, RunSpec, RunStats } from './ipc.ts'
import { median, round, summarize, type ErrorRow, type RowEnv, type RunPair } from './report.ts'

/** The machine's load averages (1, 5, 15 min), recorded with the rows: this machine is shared. */
const loadavg1 = (): number[] => loadavg().map((x) => Math.round(x * 10) / 10)
const AGENT = fileURLToPath(new URL('./agent.ts', import.meta.url))
const PROXY = fileURLToPath(new URL('./delay-proxy.ts', import.meta.url))
const NET = '10.77.0'

export interface NetOptions {
  N: number
  Ls: number[]
  reps: number
  rttMs: number
  mbit: number
  /** Sequential round trips the secure run adds to plaintext, by the protocol's own count (masked-sum.md). */
  protocolRoundTrips: number
  /** The protocol's count from agreement to result (plaintext: 1). */
  protocolRoundTripsTotal: number
  protocolRoundTripsSource: string
  env: RowEnv
  log: (line: string) => void
}

export interface LinkCheck {
  rtt_ms: { median: number; min: number; max: number; count: number }
  /** one flow, one party to another: goodput (bytes / (time − 1 RTT)) */
  one_flow_mbit: number
  /** two parties sending to a third at once: the third's download, summed */
  two_into_one_mbit: number
  bulk_bytes: number
}

// ---- the lab: namespaces, veths, shaping, clean-up ---------------------------------------------

const tag = `nb${process.pid}`
const bridgeNs = `${tag}br`
const hostNs = (i: number): string => `${tag}h${i}`
const hostIp = (i: number): string => `${NET}.${i + 2}`
const made: string[] = []
const procs = new Set<ChildProcess>()

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`)
}

function shape(ns: string, dev: string, mbit: number): void {
  sh('tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1')
  sh('tc', '-n', ns, 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${mbit}mbit`, 'ceil', `${mbit}mbit`)
}

function createLab(n: number, mbit: number): void {
  sh('ip', 'netns', 'add', bridgeNs)
  made.push(bridgeNs)
  sh('ip', '-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge')
  sh('ip', '-n', bridgeNs, 'link', 'set', 'br0', 'up')
  for (let i = 0; i < n; i++) {
    const ns = hostNs(i)
    const inside = `${tag}i${i}`
    const port = `${tag}p${i}`
    sh('ip', 'netns', 'add', ns)
    made.push(ns)
    sh('ip', 'link', 'add', inside, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', bridgeNs)
    sh('ip', '-n', ns, 'addr', 'add', `${hostIp(i)}/24`, 'dev', inside)
    sh('ip', '-n', ns, 'link', 'set', inside, 'up')
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', '-n', bridgeNs, 'link', 'set', port, 'master', 'br0')
    sh('ip', '-n', bridgeNs, 'link', 'set', port, 'up')
    shape(ns, inside, mbit) // the party's upload
    shape(bridgeNs, port, mbit) // the party's download
  }
}

/** Kill what we started and delete our namespaces (their veths and qdiscs go with them). Idempotent. */
function teardown(): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  procs.clear()
  for (const ns of made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns])
}

/** Namespaces a killed earlier run left behind (ours by name: nb<pid>…, that pid gone). */
function removeStale(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
  for (const name of list.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    const m = /^nb(\d+)(br|h\d+)$/.exec(name)
    if (!m || Number(m[1]) === process.pid) continue
    let alive = true
    try {
      process.kill(Number(m[1]), 0)
    } catch {
      alive = false
    }
    if (!alive) spawnSync('ip', ['netns', 'del', name])
  }
}

/** A process inside a namespace (ip netns exec execs it: the child's pid is the process itself). */
function inNs(ns: string, argv: string[], ipc = false): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', ipc ? 'inherit' : 'pipe', 'inherit', ...(ipc ? ['ipc' as const] : [])] })
  procs.add(p)
  p.once('exit', () => procs.delete(p))
  return p
}

function outputOf(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    p.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
    p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exited ${String(code)}: ${out}`))))
  })
}

function ready(p: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    p.stdout?.setEncoding('utf8').once('data', (d: string) => (d.startsWith('ready') ? resolve() : reject(new Error(d))))
    p.once('exit', (code) => reject(new Error(`exited ${String(code)} before it was ready`)))
  })
}

/**
 * A delay proxy in party i's namespace: its public address:port → 127.0.0.1:port. At nice −10: it is
 * the emulated network, and on 2 shared cores the parties' CPU would otherwise delay its timers (the
 * link check records what RTT it delivers).
 */
async function proxy(i: number, port: number, rttMs: number): Promise<void> {
  await ready(inNs(hostNs(i), ['nice', '-n', '-10', process.execPath, PROXY, 'proxy', `${hostIp(i)}:${port}`, `127.0.0.1:${port}`, String(rttMs / 2)]))
}

// ---- the link checks ----------------------------------------------------------------------------

async function calibrate(o: NetOptions): Promise<LinkCheck> {
  const port = 9100
  // party 1 echoes behind its proxy; 0 pings it and sends it bulk data; 0 and 2 together send to 1
  const echo = inNs(hostNs(1), ['nice', '-n', '-10', process.execPath, PROXY, 'echo', `127.0.0.1:${port}`])
  await ready(echo)
  await proxy(1, port, o.rttMs)
  const ping = JSON.parse(await outputOf(inNs(hostNs(0), [process.execPath, PROXY, 'ping', `${hostIp(1)}:${port}`, '30']))) as { rtt_ms: number[] }
  const rtts = ping.rtt_ms.slice(5) // the first few include the connection's start-up and JIT warm-up
  const bytes = Math.round((o.mbit * 1e6 / 8) * 2) // ~2 s at the nominal rate
  const bulk = async (from: number): Promise<{ bytes: number; seconds: number }> =>
    JSON.parse(await outputOf(inNs(hostNs(from), [process.execPath, PROXY, 'bulk', `${hostIp(1)}:${port}`, String(bytes)]))) as { bytes: number; seconds: number }
  const rtt = median(rtts)
  const one = await bulk(0)
  if (one.bytes !== bytes) throw new Error(`link check: ${one.bytes} of ${bytes} bulk bytes arrived`)
  const two = await Promise.all([bulk(0), bulk(2)])
  echo.kill('SIGKILL')
  const mbit = (b: number, s: number): number => round((b * 8) / 1e6 / Math.max(1e-3, s - rtt / 1000), 1)
  const link: LinkCheck = {
    rtt_ms: { median: round(rtt, 2), min: round(Math.min(...rtts), 2), max: round(Math.max(...rtts), 2), count: rtts.length },
    one_flow_mbit: mbit(one.bytes, one.seconds),
    two_into_one_mbit: round((two[0].bytes + two[1].bytes) * 8 / 1e6 / Math.max(...two.map((t) => t.seconds - rtt / 1000)), 1),
    bulk_bytes: bytes
  }
  o.log(`netem link check: RTT ${link.rtt_ms.median} ms (min ${link.rtt_ms.min}, max ${link.rtt_ms.max}, ${link.rtt_ms.count} ping-pongs; target ${o.rttMs}), one flow ${link.one_flow_mbit} Mbit/s, two into one ${link.two_into_one_mbit} Mbit/s (target ${o.mbit})`)
  return link
}

// ---- the parties (as bench/run.ts drives them, each under `ip netns exec`) ----------------------

class Party {
  readonly proc: ChildProcess
  readonly booted: Promise<void>
  id = ''
  addr = ''
  private seq = 0
  private readonly pending = new Map<number, (r: Reply) => void>()
  readonly index: number
  constructor(index: number) {
    this.index = index
    this.proc = inNs(hostNs(index), [process.execPath, ...process.execArgv, '--expose-gc', AGENT], true)
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
  async must(m: Request): Promise<Reply> {
    const seq = ++this.seq
    const r = await new Promise<Reply>((resolve) => {
      if (!this.proc.connected) return resolve({ seq, ok: m.cmd, error: `agent ${this.id} is not running` })
      this.pending.set(seq, resolve)
      this.proc.send({ ...m, seq })
    })
    if (r.error) throw new Error(`${m.cmd}: ${r.error}`)
    return r
  }
}

let runId = 0
async function once(parties: Party[], L: number, mode: Mode): Promise<RunPair> {
  const buyer = parties[0] as Party
  const provs = parties.slice(1).sort((a, b) => comparePeers(a.id, b.id))
  const spec: RunSpec = { run: ++runId, mode, length: L, providers: provs.map((p) => p.id), buyer: buyer.id, sampleMemory: 'none' }
  await Promise.all([buyer, ...provs].map((p, i) => p.must({ cmd: 'prepare', run: spec.run, length: L, seed: i === 0 ? null : i - 1 })))
  await Promise.all(provs.map((p) => p.must({ cmd: 'arm', ...spec })))
  const [b, ps] = await Promise.all([buyer.must({ cmd: 'run', ...spec }), Promise.all(provs.map((p) => p.must({ cmd: 'collect', run: spec.run })))])
  return { buyer: b.stats as RunStats, providers: ps.map((r) => r.stats as RunStats) }
}

export interface NetRow {
  N: number
  L: number
  rtt_ms: number
  mbit: number
  secure_s: number
  plain_s: number
  ratio: number
  /** implied: (secure − plain) / RTT; protocol: agreement → result by the spec; protocol_extra: that minus plaintext's 1 */
  round_trips: { implied: number; protocol: number; protocol_extra: number; protocol_source: string }
  /** the issue's bound: 1.05 × plain + protocol round trips × RTT; at L ≥ 1M also ratio ≤ 1.05 */
  bound_s: number
  met: boolean
  [k: string]: unknown
}

export async function benchNetem(o: NetOptions): Promise<{ link: LinkCheck | null; rows: Array<NetRow | ErrorRow>; error?: string; loadavg: { start: number[]; end?: number[] } }> {
  const loadavg: { start: number[]; end?: number[] } = { start: loadavg1() }
  const onSignal = (sig: NodeJS.Signals): void => {
    teardown()
    process.exit(sig === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', teardown)
  const rows: Array<NetRow | ErrorRow> = []
  let link: LinkCheck | null = null
  try {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root')
    removeStale()
    createLab(o.N + 1, o.mbit)
    link = await calibrate(o)
    // the parties: agent on 127.0.0.1 in its namespace, its proxy on the public address
    const parties = Array.from({ length: o.N + 1 }, (_, i) => new Party(i))
    await Promise.all(parties.map((p) => p.booted))
    for (const p of parties) {
      const r = await p.must({ cmd: 'init' })
      p.id = String(r.id)
      const port = Number(/\/tcp\/(\d+)/.exec(String(r.addr))?.[1])
      await proxy(p.index, port, o.rttMs)
      p.addr = `/ip4/${hostIp(p.index)}/tcp/${port}/p2p/${p.id}`
    }
    const peers = parties.map((p) => ({ id: p.id, addr: p.addr }))
    await Promise.all(parties.map((p) => p.must({ cmd: 'connect', peers })))
    for (const [i, p] of parties.entries()) {
      const targets = parties.slice(1).filter((q) => q !== p && (i === 0 || comparePeers(p.id, q.id) < 0)).map((q) => q.id)
      const failed = (await p.must({ cmd: 'dial', peers: targets, concurrency: 8 })).failed as string[]
      if (failed.length) throw new Error(`mesh: ${failed.length} dials failed: ${failed[0]}`)
    }
    for (const L of o.Ls) {
      try {
        await once(parties, Math.min(L, 1000), 'secure')
        await once(parties, Math.min(L, 1000), 'plain')
        const secure: RunPair[] = []
        const plain: RunPair[] = []
        for (let i = 0; i < o.reps; i++) {
          secure.push(await once(parties, L, 'secure'))
          plain.push(await once(parties, L, 'plain'))
        }
        const last = { secure: secure.at(-1) as RunPair, plain: plain.at(-1) as RunPair, live: secure.at(-1) as RunPair }
        const full = summarize(o.N, L, secure, plain, last, o.env) as unknown as Record<string, unknown>
        for (const k of ['memory', 'memory_plain', 'buyer_peak_mb', 'buyer_peak_vectors', 'buyer_peak_array_buffers', 'buyer_live_mb', 'buyer_live_vectors', 'provider_live_mb']) delete full[k]
        const s = full.secure_s as number
        const pl = full.plain_s as number
        const bound = 1.05 * pl + (o.protocolRoundTrips * o.rttMs) / 1000
        const row: NetRow = {
          ...full, N: o.N, L, rtt_ms: o.rttMs, mbit: o.mbit, secure_s: s, plain_s: pl, ratio: full.ratio as number,
          round_trips: { implied: round(((s - pl) * 1000) / o.rttMs, 1), protocol: o.protocolRoundTripsTotal, protocol_extra: o.protocolRoundTrips, protocol_source: o.protocolRoundTripsSource },
          bound_s: round(bound), met: s <= bound && (L < 1_000_000 || s / pl <= 1.05)
        }
        rows.push(row)
        o.log(`netem N=${o.N} L=${L} RTT ${o.rttMs} ms ${o.mbit} Mbit/s: secure ${s} s, plain ${pl} s, ratio ${row.ratio}, implied round trips ${row.round_trips.implied} (protocol: ${o.protocolRoundTripsTotal} from agreement, ${o.protocolRoundTrips} more than plaintext), bound ${row.bound_s} s: ${row.met ? 'met' : 'NOT met'}`)
      } catch (e) {
        o.log(`netem N=${o.N} L=${L}: FAILED ${(e as Error).message}`)
        rows.push({ N: o.N, L, error: (e as Error).message })
        break
      }
    }
    await Promise.all(parties.map((p) => p.must({ cmd: 'exit' }).catch(() => {})))
    return { link, rows, loadavg: { ...loadavg, end: loadavg1() } }
  } catch (e) {
    o.log(`netem: FAILED ${(e as Error).message}`)
    return { link, rows, error: (e as Error).message, loadavg: { ...loadavg, end: loadavg1() } }
  } finally {
    teardown()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', teardown)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a } = parseArgs({
    options: {
      n: { type: 'string', default: '5' }, l: { type: 'string', default: '1000,100000,1000000' }, reps: { type: 'string', default: '5' },
      'rtt-ms': { type: 'string', default: '40' }, mbit: { type: 'string', default: '100' }, 'protocol-rt': { type: 'string' }
    }
  })
  const res = await benchNetem({
    N: Number(a.n), Ls: (a.l as string).split(',').map(Number), reps: Number(a.reps), rttMs: Number(a['rtt-ms']), mbit: Number(a.mbit),
    protocolRoundTrips: a['protocol-rt'] !== undefined ? Number(a['protocol-rt']) : protocolRoundTrips().count,
    protocolRoundTripsTotal: a['protocol-rt'] !== undefined ? Number(a['protocol-rt']) + 1 : protocolRoundTrips().total,
    protocolRoundTripsSource: a['protocol-rt'] !== undefined ? 'command line' : protocolRoundTrips().source,
    env: { node: process.version, commit: null, cpu: undefined }, log: (l) => process.stderr.write(l + '\n')
  })
  process.stdout.write(JSON.stringify({ link: res.link, rows: res.rows, error: res.error }) + '\n')
}

/**
 * Sequential round trips from agreement to result by the protocol's own count, and what the secure
 * run adds to the plaintext one (the plaintext window: stream opening with its first message, ½, then
 * the vectors, ½: 1 round trip). From protocols/masked-sum.md §7.1 when it publishes the count
 * ("agreement → result: N"); else counted here from §5.1, §6, §7: START leaves with the certificate
 * (½), the vectors and DONE come back (1), INCLUSION (1½), REVEAL (2); XCHECK (½ after a provider has its
 * certificate) is done before INCLUSION arrives, RECEIPT awaits no answer.
 */
export function protocolRoundTrips(): { count: number; total: number; source: string } {
  const PLAINTEXT = 1
  let spec = ''
  try {
    spec = readFileSync(new URL('../protocols/masked-sum.md', import.meta.url), 'utf8')
  } catch {}
  const m = /agreement → result:?\**:? (\d+)/.exec(spec) ?? /agreement → result: (\d+)/.exec(spec)
  if (m) return { count: Number(m[1]) - PLAINTEXT, total: Number(m[1]), source: `protocols/masked-sum.md §7.1: agreement → result ${m[1]} round trips; plaintext 1` }
  return { count: 2 - PLAINTEXT, total: 2, source: 'counted by bench/netem.ts from protocols/masked-sum.md §5.1, §6, §7 (it publishes no count): START → vectors → INCLUSION → REVEAL = 2 round trips from agreement; plaintext 1' }
}

interface NetDoc { link: LinkCheck | null; rows: Array<NetRow | ErrorRow>; error?: string; loadavg?: { start: number[]; end?: number[] } }

/** The network rows as markdown for bench/README.md's results block. */
export function netemLines(netem: unknown): string[] {
  const d = netem as NetDoc | null | undefined
  if (!d) return []
  const lines = ['', `Network rows (bench/netem.ts: a namespace per party, htb per party each way, delay proxy per listener)${d.link ? `; link check: RTT ${d.link.rtt_ms.median} ms (min ${d.link.rtt_ms.min}, max ${d.link.rtt_ms.max}), one flow ${d.link.one_flow_mbit} Mbit/s, two into one ${d.link.two_into_one_mbit} Mbit/s` : ''}${d.loadavg ? `; load average ${d.loadavg.start.join(' ')} at the start, ${d.loadavg.end?.join(' ') ?? '?'} at the end (2 cores, shared)` : ''}${d.error ? `; FAILED: ${d.error}` : ''}:`, '',
    '| N | L | RTT ms | Mbit/s | secure s | plain s | ratio | round trips implied by secure − plain (protocol: more than plaintext) | bound s (1.05 × plain + extra × RTT) | met |', '|---|---|---|---|---|---|---|---|---|---|']
  for (const r of d.rows) {
    if ('error' in r) lines.push(`| ${r.N} | ${r.L} | failed: ${String(r.error).replace(/\|/g, '/').slice(0, 100)} | | | | | | | |`)
    else lines.push(`| ${r.N} | ${r.L} | ${r.rtt_ms} | ${r.mbit} | ${r.secure_s} | ${r.plain_s} | ${r.ratio} | ${r.round_trips.implied} (${r.round_trips.protocol_extra}) | ${r.bound_s} | ${r.met ? 'met' : 'not met'} |`)
  }
  const ph = d.rows.filter((r): r is NetRow => !('error' in r))
  if (ph.length) {
    lines.push('', 'Phases of the secure network runs in ms (as the grid\'s):', '', '| L | negotiation | stream setup | key agreement | mask generation | streaming | confirmation |', '|---|---|---|---|---|---|---|')
    for (const r of ph) {
      const p = r.phases_ms as Record<string, number | null>
      const f = (k: string): string => (p[k] === null || p[k] === undefined ? '–' : String(Math.round(p[k] as number)))
      lines.push(`| ${r.L} | ${f('negotiation')} | ${f('stream_setup')} | ${f('key_agreement')} | ${f('mask_generation')} | ${f('streaming')} | ${f('confirmation')} |`)
    }
  }
  return lines
}
