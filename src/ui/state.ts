// The state of one run as the terminal UI shows it, folded from RunEvents (src/agent/events.ts) by
// a pure reducer: the views are functions of this state, so they are tested without a terminal,
// and the reducer without ink. Never holds raw data, vectors, seeds or keys (events carry none).
import { safeText } from '../protocol/bounded-json.ts'
import type { ResultNoise, RunEvent } from '../agent/events.ts'
import type { Phase } from '../protocol/events.ts'

export const PHASES: readonly Phase[] = ['negotiate', 'agree', 'crosscheck', 'compute', 'confirm', 'result']

export type PhaseStatus = 'pending' | 'running' | 'done' | 'failed'

export interface PhaseState {
  phase: Phase
  status: PhaseStatus
  startedAt?: number
  endedAt?: number
}

export interface PeerState {
  id: string
  name: string
  state: 'waiting' | 'connecting' | 'connected' | 'done' | 'failed'
  rttMs?: number
  decision?: 'accept' | 'reject'
  reasons?: string[]
  /** Cells streamed so far in compute (cumulative), of `totalCells`. */
  cells: number
  totalCells: number
  bytes: number
}

/** Lines that never change once they happen: rendered once, in ink's <Static>. */
export type FinishedItem =
  | { key: string; kind: 'phase'; phase: Phase; status: 'done' | 'failed'; elapsedMs: number | null }
  | { key: string; kind: 'log'; level: 'info' | 'warn'; message: string }

export interface AbortView {
  reason: string
  accused: string | null
  accusedName: string | null
  /** A dispute [A, B] (or, for a timeout, "no answer from B as seen by A"), by name; null when none. */
  dispute: string | null
  detail: string
  by: string | null
  evidence: string
  exitCode: number
}

export interface RunState {
  title: string
  peers: PeerState[]
  phases: PhaseState[]
  finished: FinishedItem[]
  status: 'running' | 'done' | 'aborted' | 'error'
  self?: string
  result?: { session: string; cells: number; out: string | null; top: Array<{ label: string; value: number; values?: Record<string, number | null> }>; aggregates: string[]; privacy?: ResultNoise }
  abort?: AbortView
  error?: { message: string; exitCode: number }
}

export function initialRunState(opts: { title: string; peers: Array<{ id: string; name: string }> }): RunState {
  return {
    title: opts.title,
    peers: opts.peers.map((p) => ({ id: p.id, name: p.name, state: 'waiting', cells: 0, totalCells: 0, bytes: 0 })),
    phases: PHASES.map((phase) => ({ phase, status: 'pending' })),
    finished: [],
    status: 'running'
  }
}

/** Short form of a peer ID for narrow terminals: 12D3Ko…a1b2. */
export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id
}

export function nameOf(state: RunState, id: string | null | undefined): string | null {
  if (!id) return null
  return state.peers.find((p) => p.id === id)?.name ?? (id === state.self ? 'this agent' : shortId(id))
}

/** One line about the evidence attached to an abort: what it is, never its contents in full. */
export function summarizeEvidence(evidence: unknown): string {
  if (evidence === undefined || evidence === null) return 'none'
  if (Array.isArray(evidence)) {
    // evidence comes from peers: only a string `type` is shown (String() of {"toString": 1} throws), made printable
    const types = evidence.slice(0, 100).map((x) => {
      const t = typeof x === 'object' && x !== null && 'type' in x ? (x as { type: unknown }).type : undefined
      return typeof t === 'string' ? safeText(t, 40) : typeof x
    })
    return `${evidence.length} item${evidence.length === 1 ? '' : 's'}${types.length ? ` (${[...new Set(types)].join(', ')})` : ''}`
  }
  if (typeof evidence === 'object') {
    const keys = Object.keys(evidence)
    return keys.length ? `signed evidence: ${keys.slice(0, 6).map((k) => safeText(k, 40)).join(', ')}${keys.length > 6 ? ', …' : ''}` : 'none'
  }
  const s = safeText(String(evidence), 200)
  return s.length > 60 ? `${s.slice(0, 57)}…` : s
}

/**
 * Progress of the compute phase in cells of the query (every provider sends each cell once): the
 * cells received, averaged over the providers, of the query's cells; bytes over all providers.
 */
export function totalProgress(state: RunState): { cells: number; totalCells: number; bytes: number } {
  let sum = 0
  let totalCells = 0
  let bytes = 0
  for (const p of state.peers) {
    sum += Math.min(p.cells, p.totalCells)
    totalCells = Math.max(totalCells, p.totalCells)
    bytes += p.bytes
  }
  const n = state.peers.length
  return { cells: n ? Math.floor(sum / n) : 0, totalCells, bytes }
}

function upsertPeer(peers: PeerState[], id: string, f: (p: PeerState) => PeerState): PeerState[] {
  const i = peers.findIndex((p) => p.id === id)
  if (i < 0) return [...peers, f({ id, name: shortId(id), state: 'waiting', cells: 0, totalCells: 0, bytes: 0 })]
  return peers.map((p, j) => (j === i ? f(p) : p))
}

/** Close every running phase as failed (abort/error): they enter <Static> with their time so far. */
function failRunning(state: RunState, at: number): RunState {
  const finished = [...state.finished]
  const phases = state.phases.map((p) => {
    if (p.status !== 'running') return p
    finished.push({ key: `phase:${p.phase}`, kind: 'phase', phase: p.phase, status: 'failed', elapsedMs: p.startedAt !== undefined ? Math.max(0, at - p.startedAt) : null })
    return { ...p, status: 'failed' as const, endedAt: at }
  })
  return { ...state, phases, finished }
}

export function reduceRun(state: RunState, e: RunEvent): RunState {
  switch (e.type) {
    case 'phase': {
      const cur = state.phases.find((p) => p.phase === e.phase)
      if (!cur) return state
      if (e.state === 'start') {
        if (cur.status !== 'pending') return state
        // a later phase starting means every earlier one is over, also those the buyer only sees
        // through its effects (crosscheck runs between providers): tick them, no time if never seen
        const idx = PHASES.indexOf(e.phase)
        const finished = [...state.finished]
        const phases = state.phases.map((p) => {
          if (p.phase === e.phase) return { ...p, status: 'running' as const, startedAt: e.at }
          if (PHASES.indexOf(p.phase) > idx || p.status === 'done' || p.status === 'failed') return p
          const elapsedMs = p.startedAt !== undefined ? Math.max(0, e.at - p.startedAt) : null
          finished.push({ key: `phase:${p.phase}`, kind: 'phase', phase: p.phase, status: 'done', elapsedMs })
          return { ...p, status: 'done' as const, endedAt: e.at }
        })
        return { ...state, phases, finished }
      }
      if (cur.status === 'done' || cur.status === 'failed') return state
      const startedAt = cur.startedAt ?? e.at
      return {
        ...state,
        phases: state.phases.map((p) => (p.phase === e.phase ? { ...p, status: 'done', startedAt, endedAt: e.at } : p)),
        finished: [...state.finished, { key: `phase:${e.phase}`, kind: 'phase', phase: e.phase, status: 'done', elapsedMs: Math.max(0, e.at - startedAt) }]
      }
    }
    case 'peer':
      return { ...state, peers: upsertPeer(state.peers, e.peer, (p) => ({ ...p, state: e.state, ...(e.rttMs !== undefined ? { rttMs: e.rttMs } : {}) })) }
    case 'decision':
      return { ...state, peers: upsertPeer(state.peers, e.provider, (p) => ({ ...p, decision: e.decision, ...(e.reasons ? { reasons: e.reasons } : {}) })) }
    case 'progress':
      // cumulative per peer (masked-sum runners emit cells so far)
      return { ...state, peers: upsertPeer(state.peers, e.peer, (p) => ({ ...p, cells: Math.max(p.cells, e.cells), totalCells: e.totalCells, bytes: Math.max(p.bytes, e.bytes) })) }
    case 'log':
      return { ...state, finished: [...state.finished, { key: `log:${state.finished.length}`, kind: 'log', level: e.level, message: e.message }] }
    case 'waiting':
      return { ...state, finished: [...state.finished, { key: `waiting:${e.peer}`, kind: 'log', level: 'info', message: `waiting for ${e.name}'s decision: its operator may have to approve (\`mpc-agent approve\` at ${e.name})` }] }
    case 'ready':
      return { ...state, self: e.peerId }
    case 'proposal':
      return state.title ? state : { ...state, title: e.title }
    case 'result': {
      const at = Date.now()
      const s = state.phases.some((p) => p.phase === 'result' && p.status === 'pending')
        ? reduceRun(reduceRun(state, { v: 1, type: 'phase', phase: 'result', state: 'start', at }), { v: 1, type: 'phase', phase: 'result', state: 'done', at })
        : state
      return { ...s, status: 'done', result: { session: e.session, cells: e.cells, out: e.out, top: e.top, aggregates: e.aggregates ?? [], ...(e.privacy ? { privacy: e.privacy } : {}) } }
    }
    case 'abort': {
      const s = failRunning(state, Date.now())
      const a = e.abort
      return {
        ...s,
        status: 'aborted',
        abort: {
          reason: a.reason, accused: a.accused, accusedName: nameOf(s, a.accused), dispute: disputeOf(s, a), detail: a.detail,
          by: a.by ?? null, evidence: summarizeEvidence(a.evidence), exitCode: e.exitCode
        }
      }
    }
    case 'error':
      return { ...failRunning(state, Date.now()), status: 'error', error: { message: e.message, exitCode: e.exitCode } }
    default:
      return state
  }
}

/** "dispute between A and B" / "no answer from B (as seen by A)", of the abort or the cause it relays. */
function disputeOf(s: RunState, a: { reason: string; disputants?: [string, string] | null; cause?: unknown }): string | null {
  const c = a.cause as { reason?: string; disputants?: [string, string] | null } | undefined
  const d = a.disputants ?? c?.disputants ?? null
  if (!d) return null
  const reason = a.disputants ? a.reason : c?.reason
  const [x, y] = d.map((p) => nameOf(s, p) ?? p) as [string, string]
  return reason === 'timeout' || reason === 'unreachable' ? `no answer from ${y} (as seen by ${x})` : `dispute between ${x} and ${y}`
}
