// The live view of one run (issue #7): peers, the six phases with status and elapsed time, a
// progress bar while masked vectors stream, and the outcome (result summary or abort panel).
// Finished phases and log lines go to ink's <Static>: written once, never re-rendered; only the
// live part below them redraws. A pure function of RunState (src/ui/state.ts) and the clock.
import React from 'react'
import { Box, Static, Text } from 'ink'
import { PHASES, totalProgress, type FinishedItem, type PeerState, type PhaseState, type RunState } from './state.ts'
import { bar, fmtBytes, fmtMs, fmtNumber } from './format.ts'
import type { ResultNoise } from '../agent/events.ts'

const h = React.createElement

export interface RunViewProps {
  state: RunState
  /** The clock for running phases' elapsed time (ms since epoch); render.ts ticks it. */
  now?: number
}

const PEER_COLOR: Record<PeerState['state'], string> = {
  waiting: 'gray', connecting: 'yellow', connected: 'green', done: 'green', failed: 'red'
}

function FinishedLine({ item }: { item: FinishedItem }): React.ReactElement {
  if (item.kind === 'log') {
    return h(Text, { color: item.level === 'warn' ? 'yellow' : 'gray' }, `  ${item.level === 'warn' ? '!' : '·'} ${item.message}`)
  }
  const ok = item.status === 'done'
  return h(Text, null,
    h(Text, { color: ok ? 'green' : 'red' }, ok ? '  ✓ ' : '  ✗ '),
    h(Text, null, item.phase.padEnd(11)),
    h(Text, { dimColor: true }, fmtMs(item.elapsedMs)))
}

function PeerRow({ peer }: { peer: PeerState }): React.ReactElement {
  const decision = peer.decision
    ? h(Text, { color: peer.decision === 'accept' ? 'green' : 'red' }, `  ${peer.decision}${peer.reasons?.length ? ` (${peer.reasons.join(', ')})` : ''}`)
    : null
  return h(Text, null,
    h(Text, { color: PEER_COLOR[peer.state] }, '  ● '),
    h(Text, { bold: true }, peer.name.padEnd(14)),
    h(Text, { color: PEER_COLOR[peer.state] }, peer.state.padEnd(11)),
    h(Text, { dimColor: true }, peer.rttMs !== undefined ? `${Math.round(peer.rttMs)} ms`.padStart(7) : ''.padStart(7)),
    decision)
}

function LivePhase({ phase, now, state }: { phase: PhaseState; now: number | undefined; state: RunState }): React.ReactElement {
  const elapsed = phase.startedAt !== undefined && now !== undefined ? Math.max(0, now - phase.startedAt) : null
  const line = h(Text, null,
    h(Text, { color: 'cyan' }, '  ▶ '),
    h(Text, { bold: true }, phase.phase.padEnd(11)),
    h(Text, { dimColor: true }, fmtMs(elapsed)))
  if (phase.phase !== 'compute') return line
  const p = totalProgress(state)
  const ratio = p.totalCells > 0 ? p.cells / p.totalCells : 0
  return h(Box, { flexDirection: 'column' }, line,
    h(Text, null,
      '    ',
      h(Text, { color: 'cyan' }, bar(ratio)),
      ` ${Math.floor(ratio * 100)}%  ${fmtNumber(p.cells)}/${fmtNumber(p.totalCells)} cells  ${fmtBytes(p.bytes)}`))
}

function Pending({ phases }: { phases: PhaseState[] }): React.ReactElement | null {
  if (!phases.length) return null
  return h(Text, { dimColor: true }, `  · ${phases.map((p) => p.phase).join(' → ')}`)
}

function AbortPanel({ state }: { state: RunState }): React.ReactElement | null {
  const a = state.abort
  if (!a) return null
  const accused = a.accused ? `${a.accusedName ?? a.accused} (${a.accused}), proven by its evidence`
    : a.dispute ? `nobody: ${a.dispute}` : 'nobody (the fault cannot be attributed)'
  return h(Box, { borderStyle: 'round', borderColor: 'red', flexDirection: 'column', paddingX: 1, marginTop: 1 },
    h(Text, { color: 'red', bold: true }, `Run aborted: ${a.reason}`),
    h(Text, null, `Accused:   ${accused}`),
    a.by ? h(Text, null, `Raised by: ${a.by}`) : null,
    h(Text, null, `Detail:    ${a.detail}`),
    h(Text, null, `Evidence:  ${a.evidence}`),
    h(Text, null, 'Nothing was released.'),
    h(Text, { bold: true }, `Exit code ${a.exitCode}`))
}

function ErrorPanel({ state }: { state: RunState }): React.ReactElement | null {
  const e = state.error
  if (!e) return null
  return h(Box, { borderStyle: 'round', borderColor: 'red', flexDirection: 'column', paddingX: 1, marginTop: 1 },
    h(Text, { color: 'red', bold: true }, 'Run failed'),
    h(Text, null, e.message),
    h(Text, { bold: true }, `Exit code ${e.exitCode}`))
}

function ResultPanel({ state }: { state: RunState }): React.ReactElement | null {
  const r = state.result
  if (!r) return null
  const top = r.top.slice(0, 5)
  const width = Math.max(0, ...top.map((t) => t.label.length))
  // every aggregate by name; the first one orders the cells
  const names = r.aggregates.length ? r.aggregates : []
  const line = (t: (typeof top)[number]): string => names.length && t.values
    ? names.map((n) => `${n} ${t.values?.[n] == null ? '–' : fmtNumber(t.values[n] as number)}`).join('  ')
    : fmtNumber(t.value)
  const heading = top.length < r.cells
    ? `Top ${top.length} of ${fmtNumber(r.cells)} cells${names[0] ? ` by ${names[0]}` : ''} (all cells in the output):`
    : 'Cells:'
  return h(Box, { borderStyle: 'round', borderColor: 'green', flexDirection: 'column', paddingX: 1, marginTop: 1 },
    h(Text, { color: 'green', bold: true }, `Result: ${fmtNumber(r.cells)} cells`),
    top.length ? h(Text, null, heading) : null,
    ...top.map((t, i) => h(Text, { key: `top${i}` }, `  ${t.label.padEnd(width)}  ${line(t)}`)),
    ...noiseLines(r.privacy).map((l, i) => h(Text, { key: `noise${i}`, color: 'yellow' }, l)),
    h(Text, null, r.out ? `Written to ${r.out}` : 'Not written to a file (see stdout)'))
}

/** A privacy query's result is noisy: say so, and by how much, per aggregate (protocols/privacy.md §7). */
function noiseLines(n: ResultNoise | undefined): string[] {
  if (!n) return []
  const mech = n.mechanism === 'discrete_gaussian' ? 'discrete Gaussian' : n.mechanism
  return Object.entries(n.aggregates).map(([a, x]) =>
    `Noisy (ε = ${n.epsilon}, δ = ${n.delta}, ${mech}): ±${fmtNumber(x.half_width_95)} per cell at 95% for ${a} (std ${x.std.toPrecision(3)})`)
}

type StaticItem = FinishedItem | { key: string; kind: 'title' }

export function RunView({ state, now }: RunViewProps): React.ReactElement {
  const running = state.phases.filter((p) => p.status === 'running')
  const pending = state.status === 'running' ? state.phases.filter((p) => p.status === 'pending') : []
  return h(Box, { flexDirection: 'column' },
    h(Static<StaticItem>, {
      items: [{ key: 'title', kind: 'title' }, ...state.finished],
      children: (item: StaticItem) => item.kind === 'title'
        ? h(Text, { key: item.key, bold: true }, `mpc-agent · ${state.title}`)
        : h(FinishedLine, { key: item.key, item })
    }),
    state.peers.length ? h(Text, { dimColor: true }, 'peers') : null,
    ...state.peers.map((p) => h(PeerRow, { key: p.id, peer: p })),
    ...running.map((p) => h(LivePhase, { key: p.phase, phase: p, now, state })),
    h(Pending, { phases: pending }),
    h(AbortPanel, { state }),
    h(ErrorPanel, { state }),
    h(ResultPanel, { state }))
}

export { PHASES }
