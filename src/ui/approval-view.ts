// Asking a person whether to answer a proposal (issue #7): the query in plain language, what this
// agent's policy says about it, then `a` approves and `r` rejects (Ctrl-C or Esc also reject:
// leaving without an answer must never mean yes). One decision only; later keys are ignored.
import React, { useRef, useState } from 'react'
import { Box, Text, useInput } from 'ink'
import { shortId } from './state.ts'
import { fmtNumber } from './format.ts'
import type { RunEvent } from '../agent/events.ts'

const h = React.createElement

/** The `proposal` event of a serving agent, plus plain-language lines (filter, time window…) shown as given. */
export type ApprovalProposal = Omit<Extract<RunEvent, { type: 'proposal' }>, 'v' | 'type'> & { lines: string[] }

export type Decision = 'approve' | 'reject'

export interface ApprovalViewProps {
  proposal: ApprovalProposal
  onDecide(decision: Decision): void
}

export function ApprovalView({ proposal: p, onDecide }: ApprovalViewProps): React.ReactElement {
  const [decided, setDecided] = useState<Decision | null>(null)
  const once = useRef(false)
  const decide = (d: Decision): void => {
    if (once.current) return
    once.current = true
    setDecided(d)
    onDecide(d)
  }
  useInput((input, key) => {
    if (input === 'a' || input === 'A') decide('approve')
    else if (input === 'r' || input === 'R' || key.escape || (key.ctrl && input === 'c')) decide('reject')
  }, { isActive: decided === null })

  const others = p.providers.length
  return h(Box, { flexDirection: 'column', borderStyle: 'round', borderColor: decided === null ? 'cyan' : decided === 'approve' ? 'green' : 'red', paddingX: 1 },
    h(Text, { bold: true }, `Proposal: ${p.title}`),
    h(Text, null, `Buyer ${shortId(p.buyer)} asks for an aggregate of dataset "${p.dataset}"`),
    h(Text, null, `grouped by ${p.columns.length ? p.columns.join(', ') : '(nothing: one total)'}: ${fmtNumber(p.cells)} cells.`),
    h(Text, null, `Computed together with ${others} provider${others === 1 ? '' : 's'}; only the masked sum leaves this machine.`),
    ...p.lines.map((l, i) => h(Text, { key: `l${i}` }, l)),
    h(Text, { dimColor: true }, `proposal ${shortId(p.proposalId)}`),
    h(Box, { marginTop: 1, flexDirection: 'column' },
      p.policy.accept
        ? h(Text, { color: 'green' }, 'Your policy allows this query.')
        : h(Text, { color: 'red' }, 'Your policy would reject this query:'),
      ...p.policy.reasons.map((r, i) => h(Text, { key: `r${i}`, color: p.policy.accept ? undefined : 'red' }, `  - ${r}`))),
    h(Box, { marginTop: 1 },
      decided === null
        ? h(Text, { bold: true }, 'Press a to approve, r to reject.')
        : h(Text, { bold: true, color: decided === 'approve' ? 'green' : 'red' }, decided === 'approve' ? 'Approved.' : 'Rejected.')))
}
