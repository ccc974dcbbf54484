// The approval prompt explains the proposal and turns one key press into one decision.
import { afterEach, describe, expect, it } from 'vitest'
import React from 'react'
import { cleanup, render } from 'ink-testing-library'
import { ApprovalView, type ApprovalProposal, type Decision } from '../../src/ui/approval-view.ts'

const h = React.createElement
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 30))

const proposal = (accept = true): ApprovalProposal => ({
  proposalId: 'ab'.repeat(32),
  buyer: '12D3KooWCityCityCityCityCityCityCityCityCityCity99',
  dataset: 'trips',
  title: 'Trips per district and hour',
  columns: ['district', 'hour'],
  cells: 288,
  providers: ['p1', 'p2', 'p3'],
  policy: accept ? { accept: true, reasons: [] } : { accept: false, reasons: ['max_runs_per_day: 3 runs today already'] },
  lines: ['Filter: day = 2026-11-23', 'Answer before 12:00 UTC']
})

afterEach(cleanup)

async function press(keys: string[], accept = true): Promise<{ decisions: Decision[]; frame: string }> {
  const decisions: Decision[] = []
  const app = render(h(ApprovalView, { proposal: proposal(accept), onDecide: (d: Decision) => decisions.push(d) }))
  await tick()
  for (const k of keys) {
    app.stdin.write(k)
    await tick()
  }
  return { decisions, frame: app.lastFrame() ?? '' }
}

describe('ApprovalView', () => {
  it('explains the proposal in plain language and asks for a or r', async () => {
    const { frame, decisions } = await press([])
    expect(frame).toContain('Proposal: Trips per district and hour')
    expect(frame).toContain('dataset "trips"')
    expect(frame).toContain('grouped by district, hour: 288 cells')
    expect(frame).toContain('3 providers')
    expect(frame).toContain('Filter: day = 2026-11-23')
    expect(frame).toContain('Your policy allows this query.')
    expect(frame).toContain('Press a to approve, r to reject.')
    expect(decisions).toEqual([])
  })

  it('shows why the policy would reject', async () => {
    const { frame } = await press([], false)
    expect(frame).toContain('Your policy would reject this query:')
    expect(frame).toContain('- max_runs_per_day: 3 runs today already')
  })

  it('a approves, once', async () => {
    const { decisions, frame } = await press(['a', 'r', 'a'])
    expect(decisions).toEqual(['approve'])
    expect(frame).toContain('Approved.')
  })

  it('r rejects; other keys do nothing', async () => {
    const { decisions, frame } = await press(['x', 'y', 'r'])
    expect(decisions).toEqual(['reject'])
    expect(frame).toContain('Rejected.')
  })

  it('Esc rejects (leaving never means yes)', async () => {
    const { decisions } = await press(['\u001b'])
    expect(decisions).toEqual(['reject'])
  })
})

describe('ApprovalView Ctrl-C', () => {
  it('Ctrl-C rejects', async () => {
    const { decisions } = await press(['\u0003'])
    expect(decisions).toEqual(['reject'])
  })
})
