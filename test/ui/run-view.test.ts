// The run view renders each stage of a run: connecting, computing (progress bar), aborted, done.
import { afterEach, describe, expect, it } from 'vitest'
import React from 'react'
import { cleanup, render } from 'ink-testing-library'
import { RunView } from '../../src/ui/run-view.ts'
import { initialRunState, reduceRun, type RunState } from '../../src/ui/state.ts'
import type { RunEvent } from '../../src/agent/events.ts'

const h = React.createElement
const A = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAlice01'
const B = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBob02'
const T0 = 1_700_000_000_000

const start = (): RunState => initialRunState({ title: 'Trips per district', peers: [{ id: A, name: 'alice' }, { id: B, name: 'bob' }] })
const fold = (s: RunState, es: RunEvent[]): RunState => es.reduce(reduceRun, s)
const phase = (p: 'negotiate' | 'agree' | 'crosscheck' | 'compute' | 'confirm' | 'result', state: 'start' | 'done', at: number): RunEvent =>
  ({ v: 1, type: 'phase', phase: p, state, at })

afterEach(cleanup)

describe('RunView', () => {
  it('ticks every earlier phase when a later one starts (crosscheck is only seen through compute)', () => {
    const s = fold(start(), [phase('negotiate', 'start', T0), phase('negotiate', 'done', T0 + 100), phase('agree', 'start', T0 + 100), phase('compute', 'start', T0 + 300)])
    expect(s.phases.filter((p) => p.status === 'done').map((p) => p.phase)).toEqual(['negotiate', 'agree', 'crosscheck'])
    expect(s.finished.filter((f) => f.kind === 'phase').map((f) => f.kind === 'phase' && f.phase)).toEqual(['negotiate', 'agree', 'crosscheck'])
    const f = render(h(RunView, { state: s, now: T0 + 400 })).lastFrame() ?? ''
    expect(f).toMatch(/crosscheck/)
  })
  it('says which provider it waits for when one has not decided (manual approval)', () => {
    const s = fold(start(), [
      { v: 1, type: 'peer', peer: B, state: 'connected', rttMs: 4 },
      phase('negotiate', 'start', T0),
      { v: 1, type: 'waiting', peer: B, name: 'bob', seconds: 3 }
    ])
    const f = render(h(RunView, { state: s, now: T0 + 3000 })).lastFrame() ?? ''
    expect(f).toContain('waiting for bob\'s decision: its operator may have to approve')
  })
  it('shows peers connecting and the pending phases', () => {
    const s = fold(start(), [
      { v: 1, type: 'peer', peer: A, state: 'connecting' },
      { v: 1, type: 'peer', peer: B, state: 'connected', rttMs: 12 },
      phase('negotiate', 'start', T0)
    ])
    const { lastFrame } = render(h(RunView, { state: s, now: T0 + 1500 }))
    const f = lastFrame() ?? ''
    expect(f).toContain('Trips per district')
    expect(f).toMatch(/alice\s+connecting/)
    expect(f).toMatch(/bob\s+connected\s+12 ms/)
    expect(f).toMatch(/negotiate\s+1\.5 s/)
    expect(f).toContain('agree → crosscheck → compute → confirm → result')
  })
  it('shows compute progress as a bar with cells and bytes, finished phases with their time', () => {
    const s = fold(start(), [
      { v: 1, type: 'peer', peer: A, state: 'connected', rttMs: 3 },
      { v: 1, type: 'peer', peer: B, state: 'connected', rttMs: 4 },
      phase('negotiate', 'start', T0), phase('negotiate', 'done', T0 + 200),
      phase('agree', 'start', T0 + 200), phase('agree', 'done', T0 + 450),
      phase('crosscheck', 'start', T0 + 450), phase('crosscheck', 'done', T0 + 500),
      phase('compute', 'start', T0 + 500),
      { v: 1, type: 'progress', peer: A, cells: 500, totalCells: 1000, bytes: 4096 },
      { v: 1, type: 'progress', peer: B, cells: 250, totalCells: 1000, bytes: 2048 }
    ])
    const { lastFrame } = render(h(RunView, { state: s, now: T0 + 2500 }))
    const f = lastFrame() ?? ''
    expect(f).toMatch(/✓ negotiate\s+200 ms/)
    expect(f).toMatch(/✓ agree\s+250 ms/)
    expect(f).toMatch(/▶ compute\s+2\.0 s/)
    expect(f).toContain('█'.repeat(9) + '░'.repeat(15)) // 750/2000 = 37.5% of 24
    expect(f).toContain('37%  375/1,000 cells  6.0 KiB') // cells of the query, averaged over the providers
    expect(f).toContain('confirm → result')
    expect(f).not.toMatch(/▶ negotiate/)
  })

  it('shows an abort in a panel: reason, accused peer by name, evidence, exit code; nothing pending', () => {
    const s = fold(start(), [
      phase('negotiate', 'start', T0), phase('negotiate', 'done', T0 + 10),
      phase('compute', 'start', T0 + 20),
      {
        v: 1, type: 'abort', session: 'ab'.repeat(32), exitCode: 4,
        abort: { reason: 'key_confirmation_failed', accused: B, detail: 'tag from bob does not verify', evidence: { confirm: 'x', certificate: 'y' } }
      }
    ])
    const f = render(h(RunView, { state: s, now: T0 + 100 })).lastFrame() ?? ''
    expect(f).toContain('Run aborted: key_confirmation_failed')
    expect(f).toContain(`Accused:   bob (${B})`)
    expect(f).toContain('tag from bob does not verify')
    expect(f).toContain('Evidence:  signed evidence: confirm, certificate')
    expect(f).toContain('Exit code 4')
    expect(f).toMatch(/✗ compute/)
    expect(f).toMatch(/[╭╰]/) // bordered
    expect(f).not.toContain('confirm → result')
  })

  it('names an unattributable abort as such', () => {
    const s = reduceRun(start(), { v: 1, type: 'abort', session: null, exitCode: 4, abort: { reason: 'canary_nonzero', accused: null, detail: 'canary cells are not zero' } })
    const f = render(h(RunView, { state: s })).lastFrame() ?? ''
    expect(f).toContain('nobody (the fault cannot be attributed)')
    expect(f).toContain('Evidence:  none')
  })

  it('shows the result: cells, top cells by value, output file', () => {
    const s = fold(start(), [
      phase('confirm', 'start', T0), phase('confirm', 'done', T0 + 30),
      { v: 1, type: 'result', session: 'cd'.repeat(32), cells: 12, out: '/tmp/out.csv', top: [{ label: 'Mitte 08:00', value: 1234 }, { label: 'Pankow 09:00', value: 99.5 }] }
    ])
    const f = render(h(RunView, { state: s })).lastFrame() ?? ''
    expect(f).toContain('Result: 12 cells')
    expect(f).toMatch(/Mitte 08:00\s+1,234/)
    expect(f).toMatch(/Pankow 09:00\s+99\.5/)
    expect(f).toContain('Written to /tmp/out.csv')
    expect(f).toMatch(/✓ result/)
  })

  it('a 10-cell query shows 10/10 cells at the end of compute, whatever the number of providers', () => {
    const s = fold(start(), [
      phase('compute', 'start', T0),
      { v: 1, type: 'progress', peer: A, cells: 10, totalCells: 10, bytes: 100 },
      { v: 1, type: 'progress', peer: B, cells: 10, totalCells: 10, bytes: 100 }
    ])
    const f = render(h(RunView, { state: s, now: T0 + 10 })).lastFrame() ?? ''
    expect(f).toContain('100%  10/10 cells')
  })

  it('the result box shows every aggregate by name and says when it shows only the top cells', () => {
    const s = fold(start(), [
      { v: 1, type: 'result', session: 'cd'.repeat(32), cells: 10, out: '/tmp/out.csv', aggregates: ['trips', 'mean_fare'],
        top: [6, 5, 4, 3, 2].map((n) => ({ label: `zone ${n}`, value: n * 100, values: { trips: n * 100, mean_fare: n + 0.5 } })) }
    ])
    const f = render(h(RunView, { state: s })).lastFrame() ?? ''
    expect(f).toContain('Top 5 of 10 cells by trips')
    expect(f).toMatch(/zone 6\s+trips 600\s+mean_fare 6\.5/)
    expect(f).toMatch(/zone 2\s+trips 200\s+mean_fare 2\.5/)
    const all = render(h(RunView, { state: fold(start(), [
      { v: 1, type: 'result', session: 'cd'.repeat(32), cells: 1, out: null, aggregates: ['trips', 'mean_fare'], top: [{ label: '(total)', value: 7, values: { trips: 7, mean_fare: null } }] }
    ]) })).lastFrame() ?? ''
    expect(all).not.toContain('Top ')
    expect(all).toMatch(/\(total\)\s+trips 7\s+mean_fare –/)
  })

  it('the result box of a privacy query says it is noisy and by how much, per aggregate', () => {
    const plain = render(h(RunView, { state: fold(start(), [
      { v: 1, type: 'result', session: 'cd'.repeat(32), cells: 1, out: null, aggregates: ['trips'], top: [{ label: '(total)', value: 7, values: { trips: 7 } }] }
    ]) })).lastFrame() ?? ''
    expect(plain).not.toContain('Noisy')
    const f = render(h(RunView, { state: fold(start(), [
      { v: 1, type: 'result', session: 'cd'.repeat(32), cells: 1, out: null, aggregates: ['trips', 'fare'], top: [{ label: '(total)', value: 7, values: { trips: 7, fare: 30 } }],
        privacy: { mechanism: 'discrete_gaussian', epsilon: 1, delta: 1e-9, aggregates: { trips: { std: 6.1, half_width_95: 12 }, fare: { std: 61, half_width_95: 120 } } } }
    ]) })).lastFrame() ?? ''
    expect(f).toContain('Noisy (ε = 1, δ = 1e-9, discrete Gaussian): ±12 per cell at 95% for trips')
    expect(f).toContain('Noisy (ε = 1, δ = 1e-9, discrete Gaussian): ±120 per cell at 95% for fare')
  })

  it('shows log lines and an error panel', () => {
    const s = fold(start(), [
      { v: 1, type: 'log', level: 'warn', message: 'bob is slow' },
      { v: 1, type: 'error', message: 'column trips missing', exitCode: 6 }
    ])
    const f = render(h(RunView, { state: s })).lastFrame() ?? ''
    expect(f).toContain('! bob is slow')
    expect(f).toContain('Run failed')
    expect(f).toContain('column trips missing')
    expect(f).toContain('Exit code 6')
  })
})
