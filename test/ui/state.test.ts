// The run-state reducer, without ink: phases, peers, progress, outcome; and it never goes backwards.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { initialRunState, reduceRun, summarizeEvidence, totalProgress, PHASES, type RunState } from '../../src/ui/state.ts'
import type { RunEvent } from '../../src/agent/events.ts'

const A = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAlice01'
const start = (): RunState => initialRunState({ title: 't', peers: [{ id: A, name: 'alice' }] })
const fold = (es: RunEvent[], s = start()): RunState => es.reduce(reduceRun, s)

describe('reduceRun', () => {
  it('starts with every phase pending and peers waiting', () => {
    const s = start()
    expect(s.phases.map((p) => [p.phase, p.status])).toEqual(PHASES.map((p) => [p, 'pending']))
    expect(s.peers).toEqual([{ id: A, name: 'alice', state: 'waiting', cells: 0, totalCells: 0, bytes: 0 }])
    expect(s.status).toBe('running')
  })

  it('moves a phase pending → running → done and records it once in finished with its elapsed time', () => {
    const s = fold([
      { v: 1, type: 'phase', phase: 'negotiate', state: 'start', at: 1000 },
      { v: 1, type: 'phase', phase: 'negotiate', state: 'done', at: 1300 },
      { v: 1, type: 'phase', phase: 'negotiate', state: 'done', at: 1900 }, // duplicate: ignored
      { v: 1, type: 'phase', phase: 'negotiate', state: 'start', at: 2000 } // restart: ignored
    ])
    expect(s.phases[0]).toEqual({ phase: 'negotiate', status: 'done', startedAt: 1000, endedAt: 1300 })
    expect(s.finished).toEqual([{ key: 'phase:negotiate', kind: 'phase', phase: 'negotiate', status: 'done', elapsedMs: 300 }])
  })

  it('tracks peer connection state, rtt and decisions; unknown peers are added by short ID', () => {
    const B = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBob02'
    const s = fold([
      { v: 1, type: 'peer', peer: A, state: 'connecting' },
      { v: 1, type: 'peer', peer: A, state: 'connected', rttMs: 7 },
      { v: 1, type: 'decision', provider: A, decision: 'reject', reasons: ['buyer_not_allowed'] },
      { v: 1, type: 'peer', peer: B, state: 'connected' }
    ])
    expect(s.peers[0]).toMatchObject({ state: 'connected', rttMs: 7, decision: 'reject', reasons: ['buyer_not_allowed'] })
    expect(s.peers[1]).toMatchObject({ id: B, name: '12D3Ko…ob02', state: 'connected' })
  })

  it('keeps progress cumulative per peer and counts cells of the query, averaged over the providers (bytes summed)', () => {
    const B = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBob02'
    const s = fold([
      { v: 1, type: 'progress', peer: A, cells: 10, totalCells: 100, bytes: 80 },
      { v: 1, type: 'progress', peer: A, cells: 30, totalCells: 100, bytes: 240 },
      { v: 1, type: 'progress', peer: B, cells: 100, totalCells: 100, bytes: 800 }
    ])
    expect(totalProgress(s)).toEqual({ cells: 65, totalCells: 100, bytes: 1040 })
  })

  it('an abort fails the running phase, names the accused and summarises evidence', () => {
    const s = fold([
      { v: 1, type: 'phase', phase: 'compute', state: 'start', at: 5 },
      { v: 1, type: 'abort', session: null, exitCode: 4, abort: { reason: 'bad_vector', accused: A, detail: 'too long', evidence: [{ type: 'chunk' }, { type: 'chunk' }], by: A } }
    ])
    expect(s.status).toBe('aborted')
    expect(s.phases.find((p) => p.phase === 'compute')?.status).toBe('failed')
    expect(s.finished.at(-1)).toMatchObject({ kind: 'phase', phase: 'compute', status: 'failed' })
    expect(s.abort).toEqual({ reason: 'bad_vector', accused: A, accusedName: 'alice', dispute: null, detail: 'too long', by: A, evidence: '2 items (chunk)', exitCode: 4 })
  })

  it('an unattributable abort names the dispute or the silence, by name, and accuses nobody (issue 16)', () => {
    const B = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBob02' // not a known peer: shown by its short ID
    const dispute = fold([{ v: 1, type: 'abort', session: null, exitCode: 4, abort: { reason: 'key_confirmation_failed', accused: null, disputants: [A, B], detail: 'x' } }])
    expect([dispute.abort?.accused, dispute.abort?.dispute]).toEqual([null, "dispute between alice and 12D3Ko…ob02"])
    // relayed: the cause's silence
    const silence = fold([{ v: 1, type: 'abort', session: null, exitCode: 5, abort: { reason: 'peer_abort', accused: null, by: A, detail: 'x', cause: { reason: 'timeout', disputants: [A, B] } } }])
    expect(silence.abort?.dispute).toBe("no answer from 12D3Ko…ob02 (as seen by alice)")
  })

  it('a result completes the result phase and stores the summary', () => {
    const s = fold([{ v: 1, type: 'result', session: 's', cells: 3, out: null, top: [{ label: 'x', value: 1 }] }])
    expect(s.status).toBe('done')
    expect(s.phases.find((p) => p.phase === 'result')?.status).toBe('done')
    expect(s.result).toEqual({ session: 's', cells: 3, out: null, top: [{ label: 'x', value: 1 }], aggregates: [] })
  })

  it('logs append to finished with unique keys; ready records this agent', () => {
    const s = fold([
      { v: 1, type: 'log', level: 'info', message: 'one' },
      { v: 1, type: 'log', level: 'warn', message: 'two' },
      { v: 1, type: 'ready', peerId: 'me', addrs: [] }
    ])
    expect(s.finished.map((f) => f.key)).toEqual(['log:0', 'log:1'])
    expect(s.self).toBe('me')
  })

  it('finished only grows and phases never go back to pending, whatever the event order', () => {
    const ev = fc.oneof(
      fc.record({ v: fc.constant(1 as const), type: fc.constant('phase' as const), phase: fc.constantFrom(...PHASES), state: fc.constantFrom('start' as const, 'done' as const), at: fc.nat(1e6) }),
      fc.record({ v: fc.constant(1 as const), type: fc.constant('progress' as const), peer: fc.constantFrom(A, 'p2'), cells: fc.nat(100), totalCells: fc.constant(100), bytes: fc.nat(1000) }),
      fc.record({ v: fc.constant(1 as const), type: fc.constant('log' as const), level: fc.constant('info' as const), message: fc.string() })
    )
    fc.assert(fc.property(fc.array(ev, { maxLength: 40 }), (es) => {
      let s = start()
      for (const e of es) {
        const next = reduceRun(s, e)
        expect(next.finished.slice(0, s.finished.length)).toEqual(s.finished)
        next.phases.forEach((p, i) => {
          if (s.phases[i]?.status !== 'pending') expect(p.status).not.toBe('pending')
        })
        s = next
      }
      expect(new Set(s.finished.map((f) => f.key)).size).toBe(s.finished.length)
    }), { numRuns: 200 })
  })
})

describe('summarizeEvidence', () => {
  it('describes without dumping', () => {
    expect(summarizeEvidence(undefined)).toBe('none')
    expect(summarizeEvidence({ a: 1, b: 2 })).toBe('signed evidence: a, b')
    expect(summarizeEvidence('x'.repeat(100))).toHaveLength(58)
  })
})
