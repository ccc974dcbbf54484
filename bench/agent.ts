// One benchmark party as its own OS process, driven by bench/run.ts over IPC (bench/ipc.ts). It runs
// the real negotiation (bench/negotiate.ts) and the real masked-sum runners over real libp2p (TCP +
// Noise + yamux) streams, and — bench code only, no production path does this — a plaintext
// baseline that sends the unmasked vector over the same connections with the same framing,
// chunking and backpressure (channelFromStream), summed with the same `accumulate`, so the ratio
// measures the protocol alone.
//
// Timed window (the row's secure_s / plain_s, on the buyer's clock):
//   secure  start "agreement": negotiate() resolved at the buyer, i.e. every provider accepted and
//                 the buyer-signed certificate has been sent on every negotiation stream;
//           stop  "result": runBuyer() returned the total in memory (self masks removed, canaries and
//                 plausibility checked, receipts sent, streams closed).
//   plain   start: the buyer's streams are open (both modes open theirs before their window);
//           stop: every provider's last chunk is summed and the buyer's streams are closed.
// Negotiation (createProposal → certificate in hand) is recorded separately, never in the window.
import { writeFileSync } from 'node:fs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createAgentNode, handleProtocol, openChannel, type AgentNode } from '../src/net/node.ts'
import { channelFromStream } from '../src/net/framing.ts'
import { signerFromSeed, type Signer } from '../src/crypto/sign.ts'
import { comparePeers } from '../src/crypto/peer.ts'
import { runProvider } from '../src/protocol/masked-sum-provider.ts'
import { runBuyer } from '../src/protocol/masked-sum-buyer.ts'
import { CHUNK_ELEMS, accumulate } from '../src/protocol/masks.ts'
import { decodeChunk, encodeChunk } from '../src/protocol/masked-sum-messages.ts'
import { inspectCertificate } from '../src/agent/context.ts'
import type { Channel } from '../src/protocol/transport.ts'
import type { ProtocolEvent } from '../src/protocol/events.ts'
import type { Query } from '../src/query/types.ts'
import type { Memory, Request, RunSpec, RunStats } from './ipc.ts'
import { benchQuery, benchVector } from './workload.ts'
import { addQueryNoise } from '../src/data/compute.ts'
import { buyerAgreement, providerAgreement } from './negotiate.ts'

const NEGOTIATE = '/mpc-agent-bench/negotiate/1.0.0'
const SECURE = '/mpc-agent-bench/secure/1.0.0'
const PLAIN = '/mpc-agent-bench/plain/1.0.0'
/** A stream the run needs that never arrives fails the run instead of hanging the bench. */
const TAKE_TIMEOUT_MS = 90_000
/** The plaintext baseline's reads have no phase deadlines of a runner: bound them here. */
const PLAIN_RECEIVE_MS = 300_000

let node: AgentNode
let signer: Signer
let self = ''
const allow = new Set<string>()
const addrs = new Map<string, string>()
/** Frame bytes of every bench channel of this process, inbound and outbound. */
const counters = { sent: 0, received: 0 }
/** Frame bytes (length prefix included) of the CHUNK frames this process sent: the vector traffic. */
let chunkBytesSent = 0
const MSG_CHUNK = 0x20

/** The same channel, counting the CHUNK frames sent on it. */
function countingChunks(ch: Channel): Channel {
  return {
    remote: ch.remote,
    send: (m) => {
      if (m[0] === MSG_CHUNK) chunkBytesSent += 4 + m.length
      return ch.send(m)
    },
    receive: (o) => ch.receive(o),
    close: () => ch.close(),
    abort: (e) => ch.abort(e)
  }
}

// ---- inbound streams: the first frame names the run; the run's code picks the channel up -------

const inbound = new Map<string, Channel[]>()
const waiters = new Map<string, Array<(c: Channel) => void>>()
const keyOf = (proto: string, run: number, remote: string): string => `${proto} ${run} ${remote}`

function deliver(key: string, ch: Channel): void {
  const w = waiters.get(key)?.shift()
  if (w) return w(ch)
  inbound.set(key, [...(inbound.get(key) ?? []), ch])
}

function take(key: string): Promise<Channel> {
  const hit = inbound.get(key)?.shift()
  if (hit) return Promise.resolve(hit)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.set(key, (waiters.get(key) ?? []).filter((x) => x !== got))
      reject(new Error(`no stream ${key} within ${TAKE_TIMEOUT_MS / 1000} s`))
    }, TAKE_TIMEOUT_MS)
    const got = (c: Channel): void => {
      clearTimeout(timer)
      resolve(c)
    }
    waiters.set(key, [...(waiters.get(key) ?? []), got])
  })
}

async function open(proto: string, run: number, peer: string, timeoutMs?: number): Promise<Channel> {
  // optimistic protocol selection, as the agent opens its masked-sum streams (the hello goes at once)
  const ch = await openChannel(node, addrs.get(peer) as string, proto, { counters, timeoutMs, optimistic: proto !== NEGOTIATE })
  await ch.send(new TextEncoder().encode(JSON.stringify({ run })))
  return ch
}

/** As serve does for co-provider streams: retry within the negotiation window. */
async function openWithin(proto: string, run: number, peer: string, windowMs: number): Promise<Channel> {
  const until = Date.now() + windowMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(proto, run, peer, Math.max(1000, until - Date.now()))
    } catch (e) {
      if (Date.now() >= until) throw e
      await sleep(Math.min(2000, 250 * 2 ** attempt))
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- measurement ----------------------------------------------------------------------------

function sample(): Memory {
  const u = process.memoryUsage()
  return { array_buffers: u.arrayBuffers, heap_used: u.heapUsed, rss: u.rss, sum: u.arrayBuffers + u.heapUsed }
}

const maxOf = (a: Memory, b: Memory): Memory => ({ array_buffers: Math.max(a.array_buffers, b.array_buffers), heap_used: Math.max(a.heap_used, b.heap_used), rss: Math.max(a.rss, b.rss), sum: Math.max(a.sum, b.sum) })

/**
 * Peak memory of a run. `peak`: sampled every 5 ms, garbage included (V8 collects ArrayBuffers only
 * when their external memory has grown by tens of MB, so this is mostly transport garbage). `live`:
 * a full gc() then a sample every 25 ms, i.e. what the run actually holds. Memory runs only.
 */
class PeakMemory {
  private m = sample()
  private l = sample()
  private lMin = Infinity
  private readonly timers: NodeJS.Timeout[] = []
  constructor(sampling: RunSpec['sampleMemory']) {
    if (sampling === 'peak') {
      this.timers.push(setInterval(() => {
        const x = sample()
        this.m = maxOf(this.m, x)
        this.lMin = Math.min(this.lMin, x.sum)
      }, 5))
    }
    if (sampling === 'live' && globalThis.gc) {
      this.timers.push(setInterval(() => {
        globalThis.gc?.()
        const x = sample()
        this.l = maxOf(this.l, x)
        this.lMin = Math.min(this.lMin, x.sum)
      }, 25))
    }
  }
  stop(): { peak: Memory; live: Memory; floor: number } {
    for (const t of this.timers) clearInterval(t)
    this.m = maxOf(this.m, sample())
    return { peak: this.m, live: this.l, floor: this.lMin }
  }
}

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6
const ms1 = (x: number): number => Math.round(x * 10) / 10

// With --cpu-prof (bench/run.ts --cpu-prof DIR): every timed window's start and end, in µs of the
// monotonic clock V8's CPU profile uses too, go to DIR/<profile name>.windows.json at exit, so that a
// profile can be read for the windows only (bench/README.md "Profiling the window").
const profDir = process.execArgv.find((a) => a.startsWith('--cpu-prof-dir='))?.slice('--cpu-prof-dir='.length)
const profName = process.execArgv.find((a) => a.startsWith('--cpu-prof-name='))?.slice('--cpu-prof-name='.length)
const windowSpans: Array<[number, number, 'secure' | 'plain']> = []
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n)
if (profDir && profName) {
  process.on('exit', () => writeFileSync(`${profDir}/${profName.replace(/\.cpuprofile$/, '')}.windows.json`, JSON.stringify(windowSpans)))
}

/** A timed window: wall clock, this process's CPU and frame bytes, phase marks relative to its start. */
class Window {
  private readonly mono0 = monoUs()
  private readonly kind: 'secure' | 'plain'
  constructor(kind: 'secure' | 'plain') {
    this.kind = kind
  }
  readonly t0 = performance.now()
  private readonly cpu0 = process.cpuUsage()
  private readonly sent0 = counters.sent
  private readonly chunks0 = chunkBytesSent
  private readonly received0 = counters.received
  readonly marks: Record<string, number> = {}
  result: { wall_ms: number; cpu_s: number; bytes_sent: number; bytes_received: number; chunk_bytes_sent: number } | null = null
  mark(k: string): void {
    this.marks[k] = ms1(performance.now() - this.t0)
  }
  readonly events = (e: ProtocolEvent): void => {
    if (e.type === 'phase') this.mark(`${e.phase}_${e.state}`)
  }
  stop(): void {
    windowSpans.push([this.mono0, monoUs(), this.kind])
    this.result = { wall_ms: performance.now() - this.t0, cpu_s: cpuSeconds(process.cpuUsage(this.cpu0)), bytes_sent: counters.sent - this.sent0, bytes_received: counters.received - this.received0, chunk_bytes_sent: chunkBytesSent - this.chunks0 }
  }
}

interface Negotiated { ms: number | null; cpu_s: number; sent: number }
interface Outcome { w: Window; stats: Record<string, number> | null; negotiation: Negotiated | null }

/** The runner's optional `stats` (numbers only), read defensively: older runners have none. */
function statsOf(res: object): Record<string, number> | null {
  const raw: unknown = 'stats' in res ? res.stats : undefined
  if (typeof raw !== 'object' || raw === null) return null
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v
  return Object.keys(out).length ? out : null
}

// ---- the four run bodies ------------------------------------------------------------------------

const queries = new Map<string, Query>()
function queryFor(s: RunSpec): Query {
  const privacy = s.mode === 'private'
  const k = `${s.length} ${s.providers.join(',')} ${privacy}`
  let q = queries.get(k)
  if (!q) queries.set(k, (q = benchQuery(s.length, s.buyer, s.providers, privacy)))
  return q
}

async function buyerSecure(s: RunSpec): Promise<Outcome> {
  const query = queryFor(s)
  // negotiation streams first, as `query run` dials before it proposes (in no window)
  // as `query run` does, each masked-sum stream is opened (pre-opened, masked-sum.md §5.1) right after
  // its negotiation stream, while the negotiation runs; the runner takes them at the agreement
  const pre: Array<Promise<readonly [string, Channel]>> = []
  const neg = new Map(await Promise.all(s.providers.map(async (p) => {
    const ch = await open(NEGOTIATE, s.run, p)
    const secure = open(SECURE, s.run, p).then((c) => [p, c] as const)
    secure.catch(() => {})
    pre.push(secure)
    return [p, ch] as const
  })))
  const opening = Promise.all(pre).then((e) => new Map(e))
  opening.catch(() => {})
  const cpuNeg = process.cpuUsage()
  const sentNeg = counters.sent
  const a = await buyerAgreement(signer, query, neg)
  const negotiation = { ms: a.agreedAt - a.proposedAt, cpu_s: cpuSeconds(process.cpuUsage(cpuNeg)), sent: counters.sent - sentNeg }
  const w = new Window('secure') // ← AGREEMENT: the certificate is in hand
  for (const ch of neg.values()) void ch.close()
  const chans = await opening
  w.mark('streams_open')
  const res = await runBuyer({ signer, params: a.params, channels: chans, events: w.events })
  w.stop() // ← RESULT: the total is in memory
  return { w, stats: statsOf(res), negotiation }
}

async function buyerPlain(s: RunSpec): Promise<Outcome> {
  // streams are opened before the window: the secure buyer opens its own during the negotiation,
  // which the plaintext baseline does not have, so neither window contains stream set-up
  const chans = await Promise.all(s.providers.map((p) => open(PLAIN, s.run, p)))
  const w = new Window('plain') // ← streams open (their hello sent)
  w.mark('streams_open')
  const sum = new BigUint64Array(s.length)
  const signal = AbortSignal.timeout(PLAIN_RECEIVE_MS) // the secure runners time out by phase; this has no runner
  await Promise.all(chans.map(async (ch) => {
    for (let off = 0; off < s.length;) {
      const c = decodeChunk(await ch.receive({ signal }), ch.remote)
      accumulate(sum, c.offset, c.values)
      off += c.values.length
    }
    await ch.close()
  }))
  w.stop() // ← the total is in memory
  return { w, stats: null, negotiation: null }
}

async function providerSecure(s: RunSpec, vector: BigUint64Array): Promise<Outcome> {
  const negCh = await take(keyOf(NEGOTIATE, s.run, s.buyer))
  const cpuNeg = process.cpuUsage()
  const sentNeg = counters.sent
  // as serve does: the streams to the higher co-providers are opened at our ACCEPT (masked-sum.md §5.1)
  const early = new Map<string, Promise<Channel>>()
  const outcome = await providerAgreement(signer, negCh, (providers) => {
    for (const q of providers) {
      if (q === self || comparePeers(self, q) > 0) continue
      const ch = openWithin(SECURE, s.run, q, 30_000)
      ch.catch(() => {})
      early.set(q, ch)
    }
  })
  const negotiation = { ms: null, cpu_s: cpuSeconds(process.cpuUsage(cpuNeg)), sent: counters.sent - sentNeg }
  const w = new Window('secure') // ← this provider's agreement: its certificate verified
  void negCh.close()
  const { params } = outcome
  // the privacy row: as serve does, the provider adds its noise share to its vector before masking
  // (src/data/compute.ts addQueryNoise, on the agreed query); timed inside the window and on its own
  const noiseT = performance.now()
  addQueryNoise(outcome.proposal.proposal.query, vector)
  const noiseMs = performance.now() - noiseT
  // as in serve: the runner starts at once; the lower provider of each pair dials the higher one,
  // and every stream (and the buyer's) is handed over while it is still on its way
  const windowMs = params.timeouts.negotiate_s * 1000
  const peers = new Map(params.providers.filter((q) => q !== self).map((q) =>
    [q, comparePeers(self, q) < 0 ? early.get(q) ?? openWithin(SECURE, s.run, q, windowMs) : take(keyOf(SECURE, s.run, q))] as const))
  const res = await runProvider({
    signer, params, proposalDigest: outcome.proposal.digest, certificate: outcome.certificate, inspectCertificate,
    ephemeralPrivateKey: outcome.ephemeralPrivateKey, vector, buyer: take(keyOf(SECURE, s.run, params.buyer)).then(countingChunks), peers, events: w.events
  })
  w.stop()
  const stats = statsOf(res)
  return { w, stats: outcome.proposal.proposal.query.privacy ? { ...stats, noiseMs } : stats, negotiation }
}

async function providerPlain(s: RunSpec, vector: BigUint64Array): Promise<Outcome> {
  const w = new Window('plain')
  const ch = countingChunks(await take(keyOf(PLAIN, s.run, s.buyer)))
  w.mark('stream_open')
  for (let off = 0, i = 0; off < s.length; off += CHUNK_ELEMS, i++) await ch.send(encodeChunk(i, off, vector.subarray(off, off + CHUNK_ELEMS)))
  w.mark('sent')
  await ch.receive({ signal: AbortSignal.timeout(PLAIN_RECEIVE_MS) }).catch(() => {}) // the buyer's close
  // close our end too: a half-closed stream still counts against libp2p's 64 inbound streams per
  // protocol and connection, and after 64 plaintext runs with the same buyer the 65th was refused
  // (the first full grid hung there, at the N = 50 row)
  await ch.close()
  w.stop()
  return { w, stats: null, negotiation: null }
}

// ---- per-run state prepared outside the window ---------------------------------------------------

let base: { key: string; vector: BigUint64Array } | null = null
const prepared = new Map<number, { vector: BigUint64Array | null; idle: Memory }>()

function prepare(run: number, length: number, seed: number | null): void {
  let vector: BigUint64Array | null = null
  if (seed !== null) {
    const key = `${length}/${seed}`
    if (base?.key !== key) base = { key, vector: benchVector(length, seed) }
    vector = base.vector.slice() // the runner wipes its input: a fresh copy per run
  }
  globalThis.gc?.() // garbage from the previous run must not count in this one
  const idle = sample()
  prepared.set(run, { vector, idle })
}

/** Must reach its first await only after registering the streams it waits for (see 'arm'). */
async function runParty(s: RunSpec): Promise<RunStats> {
  const isBuyer = s.buyer === self
  const prep = prepared.get(s.run)
  prepared.delete(s.run)
  const idle = prep?.idle ?? sample()
  const vector = prep?.vector ?? (isBuyer ? null : benchVector(s.length, 0))
  counters.sent = 0
  counters.received = 0
  const peak = new PeakMemory(s.sampleMemory)
  let out: Outcome
  try {
    out = isBuyer
      ? await (s.mode === 'plain' ? buyerPlain(s) : buyerSecure(s))
      : await (s.mode !== 'plain' ? providerSecure(s, vector as BigUint64Array) : providerPlain(s, vector as BigUint64Array))
  } catch (e) {
    peak.stop()
    throw e
  }
  const memoryPeak = peak.stop()
  const r = out.w.result as NonNullable<Window['result']>
  return {
    role: isBuyer ? 'buyer' : 'provider', mode: s.mode,
    wall_ms: r.wall_ms, cpu_s: r.cpu_s, bytes_sent: r.bytes_sent, bytes_received: r.bytes_received, chunk_bytes_sent: r.chunk_bytes_sent,
    negotiation_ms: out.negotiation?.ms ?? null, cpu_negotiation_s: out.negotiation?.cpu_s ?? null,
    negotiation_bytes_sent: out.negotiation?.sent ?? 0,
    marks: out.w.marks, stats: out.stats,
    memory: { idle, peak: memoryPeak.peak, live: memoryPeak.live, floor: memoryPeak.floor }
  }
}

// ---- IPC -------------------------------------------------------------------------------------

const armed = new Map<number, Promise<RunStats>>()

async function handle(m: Request): Promise<Record<string, unknown>> {
  switch (m.cmd) {
    case 'init': {
      const key = await generateKeyPair('Ed25519')
      self = peerIdFromPrivateKey(key).toString()
      signer = signerFromSeed(self, key.raw.subarray(0, 32))
      node = await createAgentNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], allow })
      await node.start()
      for (const proto of [NEGOTIATE, SECURE, PLAIN]) {
        await handleProtocol(node, proto, async (stream, remote) => {
          const ch = channelFromStream(stream, remote, { counters })
          const hello = JSON.parse(new TextDecoder().decode(await ch.receive())) as { run: number }
          deliver(keyOf(proto, hello.run, remote), ch)
        })
      }
      return { id: self, addr: node.getMultiaddrs()[0]?.toString() }
    }
    case 'connect':
      for (const p of m.peers) {
        if (p.id === self) continue
        allow.add(p.id)
        addrs.set(p.id, p.addr)
      }
      return {}
    case 'dial': {
      const failed: string[] = []
      const queue = [...m.peers]
      await Promise.all(Array.from({ length: m.concurrency }, async () => {
        for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
          for (let attempt = 1; ; attempt++) {
            try {
              await node.dial(multiaddr(addrs.get(p) as string), { signal: AbortSignal.timeout(30_000) })
              break
            } catch (e) {
              if (attempt >= 3) {
                failed.push(`${p}: ${(e as Error).message}`)
                break
              }
              await sleep(500 * attempt)
            }
          }
        }
      }))
      return { connections: node.getConnections().length, failed }
    }
    case 'prepare':
      prepare(m.run, m.length, m.seed)
      return {}
    case 'run':
      return { stats: await runParty(m) }
    case 'arm': {
      const p = runParty(m) // registers its stream waiters synchronously
      p.catch(() => {})
      armed.set(m.run, p)
      return {}
    }
    case 'collect': {
      const p = armed.get(m.run)
      armed.delete(m.run)
      if (!p) throw new Error(`run ${m.run} was never armed`)
      return { stats: await p }
    }
    case 'exit':
      await Promise.race([node?.stop(), sleep(3000)]).catch(() => {})
      process.exit(0)
  }
}

process.on('message', (m: Request & { seq: number }) => {
  void handle(m).then(
    (r) => process.send?.({ seq: m.seq, ok: m.cmd, ...r }),
    (e: unknown) => process.send?.({ seq: m.seq, ok: m.cmd, error: e instanceof Error ? e.message : String(e) })
  )
})
process.send?.({ seq: 0, ok: 'boot' })
