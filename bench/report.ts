// From per-party run measurements (bench/ipc.ts RunStats) to the rows of bench/results/latest.json,
// and the markdown tables between `<!-- results -->` and `<!-- /results -->` in bench/README.md
// (nothing else in that file is touched).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { RunStats } from './ipc.ts'

export interface RunPair { buyer: RunStats; providers: RunStats[] }
export interface RowEnv { node: string; commit: string | null; cpu: string | undefined }
export interface ErrorRow { N: number; L: number; error: string }
export type Phase = 'negotiation' | 'stream_setup' | 'key_agreement' | 'mask_generation' | 'streaming' | 'confirmation'
type Mem = { array_buffers: number; heap_used: number; rss: number }

/**
 * Issue 20's yardsticks for agreement → result on this machine: MPyC 0.11.2 summing the same vectors (Shamir
 * secret sharing over plain TCP, honest-but-curious, no agreement, no checks; every party its own process,
 * median of 3), recorded side by side when the issue was filed, and the issue's targets. The bench prints each
 * row's ratio to the reference and whether its target is met; a reference, not a re-measurement.
 */
export const MPYC_REFERENCE_S: Readonly<Record<string, number>> = { '5/1000': 0.014, '10/1000': 0.035, '5/100000': 1.33, '5/1000000': 13.8 }
export const ISSUE20_TARGET_S: Readonly<Record<string, number>> = { '5/1000': 0.015, '10/1000': 0.035, '20/1000': 0.15, '5/1000000': 0.55 }

export interface Yardstick { mpyc_s: number | null; vs_mpyc: string | null; target_s: number | null; target_met: boolean | null }

export function yardstick(N: number, L: number, secureS: number): Yardstick {
  const mpyc = MPYC_REFERENCE_S[`${N}/${L}`] ?? null
  const target = ISSUE20_TARGET_S[`${N}/${L}`] ?? null
  const x = mpyc === null ? null : secureS / mpyc
  return {
    mpyc_s: mpyc,
    vs_mpyc: x === null ? null : x >= 1 ? `${round(x, 1)}× slower` : `${round(1 / x, 1)}× faster`,
    target_s: target,
    target_met: target === null ? null : secureS <= target
  }
}

export function yardstickText(y: Yardstick): string {
  return [y.mpyc_s !== null ? `MPyC ${y.mpyc_s} s: ${y.vs_mpyc}` : '', y.target_s !== null ? `target ≤ ${y.target_s} s: ${y.target_met ? 'met' : 'NOT met'}` : ''].filter(Boolean).join(', ')
}

export interface Row {
  N: number
  L: number
  secure_s: number
  plain_s: number
  ratio: number
  secure_bytes: number
  plain_bytes: number
  bytes_ratio: number
  vector_bytes_ratio: number
  protocol_bytes: number
  /** Frame bytes of the negotiation (proposal, answers, certificate), outside the timed window. */
  negotiation_bytes: number
  vector_bytes: number
  cpu_s: { buyer_secure: number; provider_secure: number; buyer_plain: number; provider_plain: number; buyer_negotiation: number; provider_negotiation: number }
  /** Peaks of the cell's secure memory run (bench/ipc.ts RunSpec.sampleMemory). */
  memory: { buyer: Mem; provider: Mem }
  /** The same for the plaintext memory run, and the buyer's peak above idle there. */
  memory_plain: { buyer: Mem; provider: Mem; buyer_peak_mb: number }
  buyer_peak_mb: number
  buyer_peak_vectors: number
  buyer_peak_array_buffers: number
  /** What the buyer holds: peak over idle of samples each taken right after a full gc() (memory run). */
  buyer_live_mb: number
  buyer_live_vectors: number
  provider_live_mb: number
  phases_ms: Record<Phase, number | null>
  phases_source: Record<Phase, string>
  phases_extra_ms: Record<string, number>
  runs_s: { secure: number[]; plain: number[] }
  /** The last secure run's phase marks, ms from each party's agreement (provider: the first in canonical order). */
  marks: { buyer: Record<string, number>; provider: Record<string, number> | undefined }
  reps: number
  env: RowEnv
}

export const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

const present = (xs: Array<number | null | undefined>): number[] => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
const medianOrNull = (xs: Array<number | null | undefined>): number | null => (present(xs).length ? round(median(present(xs)), 1) : null)
const maxOrNull = (xs: Array<number | null | undefined>): number | null => (present(xs).length ? Math.max(...present(xs)) : null)
const span = (m: Record<string, number>, phase: string): number | null =>
  m[`${phase}_done`] !== undefined && m[`${phase}_start`] !== undefined ? (m[`${phase}_done`] as number) - (m[`${phase}_start`] as number) : null

/** One secure run's phases: buyer clock where the buyer sees the phase, else the slowest provider. */
function phasesOf(x: RunPair): Record<Phase, number | null> {
  const b = x.buyer
  return {
    negotiation: b.negotiation_ms,
    stream_setup: b.marks.streams_open ?? null,
    key_agreement: maxOrNull(x.providers.map((p) => p.stats?.keyAgreementMs ?? span(p.marks, 'crosscheck'))),
    mask_generation: maxOrNull(x.providers.map((p) => p.stats?.maskMs ?? null)),
    streaming: b.stats?.streamMs ?? span(b.marks, 'compute'),
    confirmation: b.stats?.confirmMs ?? span(b.marks, 'confirm')
  }
}

function phaseSources(xs: RunPair[]): Record<Phase, string> {
  const pStats = (k: string): boolean => xs.some((x) => x.providers.some((p) => p.stats?.[k] !== undefined))
  const bStats = (k: string): boolean => xs.some((x) => x.buyer.stats?.[k] !== undefined)
  return {
    negotiation: 'buyer clock: createProposal → certificate in hand',
    stream_setup: 'buyer clock: agreement → masked-sum streams open',
    key_agreement: pStats('keyAgreementMs') ? 'runProvider stats.keyAgreementMs, slowest provider'
      : 'provider crosscheck phase events (pair keys + XCHECK round + START), slowest provider',
    mask_generation: pStats('maskMs') ? 'runProvider stats.maskMs, slowest provider' : 'not measured (runner reports no stats)',
    streaming: bStats('streamMs') ? 'runBuyer stats.streamMs' : 'buyer clock: compute phase events (START sent → last DONE verified)',
    confirmation: bStats('confirmMs') ? 'runBuyer stats.confirmMs' : 'buyer clock: confirm phase events (INCLUSION → RECEIPT sent)'
  }
}

/** Extra runner stats when present: the buyer's unmasking, the providers' hashing and sending. */
function extras(xs: RunPair[]): Record<string, number> {
  const out: Record<string, number> = {}
  const put = (k: string, v: number | null): void => {
    if (v !== null) out[k] = v
  }
  put('buyer_unmask', medianOrNull(xs.map((x) => x.buyer.stats?.unmaskMs)))
  put('provider_hash', medianOrNull(xs.map((x) => maxOrNull(x.providers.map((p) => p.stats?.hashMs)))))
  put('provider_stream', medianOrNull(xs.map((x) => maxOrNull(x.providers.map((p) => p.stats?.streamMs)))))
  return out
}

const wireBytes = (x: RunPair): number => x.buyer.bytes_sent + x.providers.reduce((a, p) => a + p.bytes_sent, 0)
const chunkBytes = (x: RunPair): number => x.providers.reduce((a, p) => a + p.chunk_bytes_sent, 0)
const memMax = (ms: RunStats[]): Mem => ({
  array_buffers: Math.max(...ms.map((m) => m.memory.peak.array_buffers)),
  heap_used: Math.max(...ms.map((m) => m.memory.peak.heap_used)),
  rss: Math.max(...ms.map((m) => m.memory.peak.rss))
})

export function summarize(N: number, L: number, secure: RunPair[], plain: RunPair[], mem: { secure: RunPair; plain: RunPair; live: RunPair }, env: RowEnv): Row {
  const s = median(secure.map((x) => x.buyer.wall_ms)) / 1000
  const p = median(plain.map((x) => x.buyer.wall_ms)) / 1000
  const sb = median(secure.map(wireBytes))
  const pb = median(plain.map(wireBytes))
  const cpu = (xs: RunPair[], role: 'buyer' | 'provider', f: (r: RunStats) => number | null = (r) => r.cpu_s): number =>
    round(median(present(xs.flatMap((x) => (role === 'buyer' ? [f(x.buyer)] : x.providers.map(f))))))
  // the buyer's peak above its idle (after gc): what the run itself holds, in MB and in L·8-byte vectors
  // (from the cell's memory runs: the timed runs do not sample)
  const aboveOf = (x: RunPair): number => x.buyer.memory.peak.sum - Math.min(x.buyer.memory.idle.sum, x.buyer.memory.floor)
  const above = aboveOf(mem.secure)
  const liveAbove = (m: RunStats['memory']): number => m.live.sum - Math.min(m.idle.sum, m.floor)
  const liveOf = (x: RunPair): number => liveAbove(x.buyer.memory)
  const phases = secure.map(phasesOf)
  const keys: Phase[] = ['negotiation', 'stream_setup', 'key_agreement', 'mask_generation', 'streaming', 'confirmation']
  return {
    N, L,
    secure_s: round(s), plain_s: round(p), ratio: round(s / p),
    secure_bytes: sb, plain_bytes: pb, bytes_ratio: round(sb / pb, 4),
    // the vector traffic alone (CHUNK frames; secure carries 4 canary cells more), and the rest:
    // START, XCHECK, DONE, INCLUSION, REVEAL, RECEIPT and the bench's routing hello per stream
    vector_bytes_ratio: round(median(secure.map(chunkBytes)) / median(plain.map(chunkBytes)), 4),
    protocol_bytes: median(secure.map((x) => wireBytes(x) - chunkBytes(x))),
    negotiation_bytes: median(secure.map((x) => x.buyer.negotiation_bytes_sent + x.providers.reduce((a, y) => a + y.negotiation_bytes_sent, 0))),
    vector_bytes: L * 8,
    cpu_s: {
      buyer_secure: cpu(secure, 'buyer'), provider_secure: cpu(secure, 'provider'),
      buyer_plain: cpu(plain, 'buyer'), provider_plain: cpu(plain, 'provider'),
      buyer_negotiation: cpu(secure, 'buyer', (r) => r.cpu_negotiation_s), provider_negotiation: cpu(secure, 'provider', (r) => r.cpu_negotiation_s)
    },
    memory: { buyer: memMax([mem.secure.buyer]), provider: memMax(mem.secure.providers) },
    memory_plain: { buyer: memMax([mem.plain.buyer]), provider: memMax(mem.plain.providers), buyer_peak_mb: round(aboveOf(mem.plain) / 1e6, 1) },
    buyer_peak_mb: round(above / 1e6, 1),
    buyer_peak_vectors: round(above / (8 * L), 2),
    buyer_peak_array_buffers: mem.secure.buyer.memory.peak.array_buffers,
    buyer_live_mb: round(liveOf(mem.live) / 1e6, 1),
    buyer_live_vectors: round(liveOf(mem.live) / (8 * L), 2),
    provider_live_mb: round(Math.max(...mem.live.providers.map((p) => liveAbove(p.memory))) / 1e6, 1),
    phases_ms: Object.fromEntries(keys.map((k) => [k, medianOrNull(phases.map((ph) => ph[k]))])) as Record<Phase, number | null>,
    phases_source: phaseSources(secure),
    phases_extra_ms: extras(secure),
    runs_s: { secure: secure.map((x) => round(x.buyer.wall_ms / 1000)), plain: plain.map((x) => round(x.buyer.wall_ms / 1000)) },
    marks: { buyer: secure.at(-1)?.buyer.marks ?? {}, provider: secure.at(-1)?.providers[0]?.marks },
    reps: secure.length,
    env
  }
}

// ---- bench/README.md ----------------------------------------------------------------------------

export interface Doc {
  env: Record<string, unknown>
  rows: Array<Row | ErrorRow>
  scale: Row | ErrorRow | null
  /** the privacy row (bench/run.ts privacyCell), one entry per N; absent with --no-privacy */
  privacy?: Array<{ N: number; L: number; secure_s: number; private_s: number; ratio: number; noise_ms: number; noise_ns_per_cell: number } | ErrorRow>
  data: unknown
  ride_sharing: unknown
  /** the cron row (bench/cron.ts) and the network rows (bench/netem.ts), issue 20 */
  cron?: unknown
  netem?: unknown
}

const isError = (r: Row | ErrorRow): r is ErrorRow => 'error' in r
const ms = (x: number | null): string => (x === null ? '–' : String(Math.round(x)))

function mainTable(rows: Array<Row | ErrorRow>): string[] {
  return [
    '| N | L | secure s | plain s | ratio | secure bytes | plain bytes | bytes ratio (vector only) | buyer CPU s (secure/plain) | provider CPU s (secure/plain) | buyer peak MB (vectors) | buyer live MB (vectors) | provider live MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => (isError(r)
      ? `| ${r.N} | ${r.L} | failed: ${r.error.replace(/\|/g, '/').slice(0, 100)} | | | | | | | | | | |`
      : `| ${r.N} | ${r.L} | ${r.secure_s} | ${r.plain_s} | ${r.ratio} | ${r.secure_bytes} | ${r.plain_bytes} | ${r.bytes_ratio} (${r.vector_bytes_ratio}) | ${r.cpu_s.buyer_secure} / ${r.cpu_s.buyer_plain} | ${r.cpu_s.provider_secure} / ${r.cpu_s.provider_plain} | ${r.buyer_peak_mb} (${r.buyer_peak_vectors}) | ${r.buyer_live_mb} (${r.buyer_live_vectors}) | ${r.provider_live_mb} |`))
  ]
}

function phaseTable(rows: Array<Row | ErrorRow>): string[] {
  return [
    '| N | L | negotiation | stream setup | key agreement | mask generation | streaming | confirmation |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.filter((r): r is Row => !isError(r)).map((r) => {
      const p = r.phases_ms
      return `| ${r.N} | ${r.L} | ${ms(p.negotiation)} | ${ms(p.stream_setup)} | ${ms(p.key_agreement)} | ${ms(p.mask_generation)} | ${ms(p.streaming)} | ${ms(p.confirmation)} |`
    })
  ]
}

/** Rows with an issue-20 reference or target: the ratio to MPyC's recorded time, and met / not met. */
function yardstickTable(rows: Array<Row | ErrorRow>): string[] {
  const ys = rows.filter((r): r is Row => !isError(r)).map((r) => ({ r, y: yardstick(r.N, r.L, r.secure_s) })).filter(({ y }) => y.mpyc_s !== null || y.target_s !== null)
  if (!ys.length) return []
  return [
    'Issue 20 yardsticks (agreement → result; MPyC 0.11.2 as recorded when the issue was filed, `MPYC_REFERENCE_S` in bench/report.ts):', '',
    '| N | L | secure s | MPyC s | vs MPyC | target s | met |', '|---|---|---|---|---|---|---|',
    ...ys.map(({ r, y }) => `| ${r.N} | ${r.L} | ${r.secure_s} | ${y.mpyc_s ?? '–'} | ${y.vs_mpyc ?? '–'} | ${y.target_s ?? '–'} | ${y.target_met === null ? '–' : y.target_met ? 'met' : 'not met'} |`),
    ''
  ]
}

/** `extra`: lines of tables kept in their own files (bench/cron.ts, bench/netem.ts), appended at the end. */
export function writeTable(doc: Doc, extra: string[] = []): void {
  const path = new URL('./README.md', import.meta.url)
  const md = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\n<!-- results -->\n<!-- /results -->\n'
  const e = doc.env
  const first = doc.rows.find((r): r is Row => !isError(r)) ?? (doc.scale && !isError(doc.scale) ? doc.scale : null)
  const lines = [
    '<!-- results -->',
    `Last run: ${String(e.date)}, commit ${String(e.commit)}${e.dirty ? ' (with uncommitted changes)' : ''}, ${String(e.cpu)} × ${String(e.cores)}, Node ${String(e.node)}${e.quick ? ' (--quick)' : ''}; medians of ${String(e.reps)} alternating secure/plain runs per row.`,
    '',
    ...mainTable(doc.rows),
    '',
    'Phases of the secure runs in ms (median over the runs; ' + (first
      ? Object.entries(first.phases_source).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join('; ')
      : 'no successful row') + '):',
    '',
    ...phaseTable(doc.rows),
    '',
    ...yardstickTable(doc.rows)
  ]
  if (doc.scale) {
    lines.push(`Scale row (every party its own process, ${doc.scale.N + 1} processes):`, '', ...mainTable([doc.scale]), '', ...phaseTable([doc.scale]), '')
  }
  if (doc.privacy?.length) {
    lines.push('Privacy row (the same query without / with its privacy section, ε = 1, δ = 1e-9; noise: the slowest provider\'s sampler time):', '',
      '| N | L | without (s) | with (s) | ratio | noise (ms) | noise (ns/cell) |', '|---|---|---|---|---|---|---|',
      ...doc.privacy.map((r) => 'error' in r ? `| ${r.N} | ${r.L} | failed: ${r.error} | | | | |` : `| ${r.N} | ${r.L} | ${r.secure_s} | ${r.private_s} | ${r.ratio} | ${r.noise_ms} | ${r.noise_ns_per_cell} |`), '')
  }
  if (doc.data) lines.push(`Local aggregation: \`${JSON.stringify(doc.data)}\``)
  if (doc.ride_sharing) lines.push(`Ride-sharing queries through the CLI (agents serving; seconds per \`query run\`, including its process start): \`${JSON.stringify(doc.ride_sharing)}\``)
  lines.push(...extra, '<!-- /results -->')
  writeFileSync(path, md.replace(/<!-- results -->[\s\S]*<!-- \/results -->/, () => lines.join('\n')))
}
