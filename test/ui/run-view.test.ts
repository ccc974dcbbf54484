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
  it('shows peers connecting and the pending phases', () => {
    const s = fold(start(), [
      { v: 1, type: 'peer', peer: A, state: 'connecting' },
      { v: 1, type: 'peer', peer: B, state: 'connected', rttMs: 12 },
      phase('negotiate', 'start', T0)
    ])
    const { lastFrame } = render(h(RunView, { state: s, now: T0 + 1500 }))
    const f = lastFrame() ?? ''
    console.log(f)
    expect(f).toContain('Trips per district')
    expect(f).toMatch(/alice\s+connecting/)
    expect(f).toMatch(/bob\s+connected\s+12 ms/)
    expect(f).toMatch(/negotiate\s+1\.5 s/)
    expect(f).toContain('agree → crosscheck → compute → confirm → result')
  })
})
