// Routing of inbound masked-sum streams (masked-sum.md §5.1, issue 14 §5): which streams may wait
// for a certificate, and the bounded parse of their first frame.
import { describe, expect, it } from 'vitest'
import { deferred, peersToHangUp, RunRegistry, routeHead, type ProviderRun } from '../../src/agent/sessions.ts'
import type { Channel } from '../../src/protocol/transport.ts'
import { MSG } from '../../src/protocol/masked-sum-messages.ts'

const enc = (type: number, o: unknown): Uint8Array => Uint8Array.from([type, ...new TextEncoder().encode(JSON.stringify(o))])

describe('stream routing', () => {
  it('only a stream for a proposal this agent accepted may wait for its certificate', () => {
    const r = new RunRegistry()
    r.expect({ proposal: 'aa'.repeat(32), buyer: 'B', providers: ['P1', 'P2', 'P3'], until: Date.now() + 60_000 })
    expect(r.awaitingCertificate({ kind: 'xcheck', proposal: 'aa'.repeat(32) }, 'P2')?.buyer).toBe('B')
    expect(r.awaitingCertificate({ kind: 'xcheck', proposal: 'aa'.repeat(32) }, 'M')).toBeUndefined() // not a provider of it
    expect(r.awaitingCertificate({ kind: 'xcheck', proposal: 'bb'.repeat(32) }, 'P2')).toBeUndefined() // another proposal
    expect(r.awaitingCertificate({ kind: 'start' }, 'B')?.proposal).toBe('aa'.repeat(32))
    expect(r.awaitingCertificate({ kind: 'start' }, 'P2')).toBeUndefined() // START only from its buyer
    r.settle('aa'.repeat(32)) // the certificate arrived: the run itself routes from now on
    expect(r.awaitingCertificate({ kind: 'start' }, 'B')).toBeUndefined()
  })

  it('a START waits for the buyer\'s proposal still due, not one whose negotiation failed moments ago (a quick retry)', () => {
    const r = new RunRegistry()
    r.expect({ proposal: 'aa'.repeat(32), buyer: 'B', providers: ['P1', 'P2', 'P3'], until: Date.now() + 60_000 })
    r.settle('aa'.repeat(32), { reason: 'local_error', accused: null, detail: 'rejected by P3' }) // kept 30 s to answer late streams
    expect(r.awaitingCertificate({ kind: 'start' }, 'B')?.aborted?.detail).toBe('rejected by P3') // alone: told why
    r.expect({ proposal: 'bb'.repeat(32), buyer: 'B', providers: ['P1', 'P2'], until: Date.now() + 60_000 })
    expect(r.awaitingCertificate({ kind: 'start' }, 'B')?.proposal).toBe('bb'.repeat(32))
  })

  it('involves: a peer of another live run or of an accepted proposal is in use; an aborted run or the run itself is not', () => {
    const r = new RunRegistry()
    const run = (session: string, buyer: string, providers: string[]): ProviderRun => ({ session, proposal: session, buyer, providers, buyerChannel: deferred<Channel>(), peerChannels: new Map() })
    const a = run('s1', 'B', ['P1', 'P2'])
    r.add(a)
    expect(r.involves('P2')).toBe(true)
    expect(r.involves('P2', 's1')).toBe(false) // the run that aborted does not count
    expect(r.involves('B', 's1')).toBe(false)
    r.add(run('s2', 'C', ['P2', 'P3']))
    expect(r.involves('P2', 's1')).toBe(true) // another live run uses it
    expect(r.involves('C', 's1')).toBe(true)
    r.remove('s2')
    r.expect({ proposal: 'aa'.repeat(32), buyer: 'B', providers: ['P1', 'P2'], until: Date.now() + 60_000 })
    expect(r.involves('P1', 's1')).toBe(true) // a proposal accepted, its certificate still due
    r.settle('aa'.repeat(32), { reason: 'timeout', accused: null, detail: 'x' })
    expect(r.involves('P1', 's1')).toBe(false) // that negotiation failed
    a.aborted = { reason: 'timeout', accused: null, detail: 'x' }
    expect(r.involves('P1')).toBe(false)
  })

  it('a failed negotiation leaves its abort for the streams still to come, for a bounded time', () => {
    const r = new RunRegistry()
    r.expect({ proposal: 'aa'.repeat(32), buyer: 'B', providers: ['P1', 'P2', 'P3'], until: Date.now() + 60_000 })
    r.settle('aa'.repeat(32), { reason: 'timeout', accused: 'B', detail: 'no certificate' })
    const a = r.awaitingCertificate({ kind: 'xcheck', proposal: 'aa'.repeat(32) }, 'P2')
    expect(a?.aborted?.reason).toBe('timeout')
    expect(a?.until).toBeLessThanOrEqual(Date.now() + 30_000)
    r.settle('aa'.repeat(32)) // the runner's final settle does not erase the abort
    expect(r.awaitingCertificate({ kind: 'xcheck', proposal: 'aa'.repeat(32) }, 'P2')?.aborted).toBeDefined()
  })

  it('the first frame is parsed within the wire bounds: anything unroutable is null', () => {
    const s = 'ab'.repeat(32)
    expect(routeHead(enc(MSG.start, { v: 2, type: 'start', session: s }))).toEqual({ kind: 'start', session: s })
    expect(routeHead(enc(MSG.xcheck, { session: s, proposal: s }))).toEqual({ kind: 'xcheck', session: s, proposal: s })
    for (const bad of [
      enc(MSG.start, null), enc(MSG.start, { session: { toString: 1 } }), enc(MSG.xcheck, { session: s }), enc(MSG.xcheck, { session: s, proposal: 1 }),
      enc(MSG.start, { session: 'AB'.repeat(32) }), enc(MSG.done, { session: s }),
      Uint8Array.from([MSG.start, ...new TextEncoder().encode('['.repeat(400_000) + ']'.repeat(400_000))])
    ]) expect(routeHead(bad)).toBeNull()
  })
})

describe('whom serve hangs up on after a certified run aborted', () => {
  const run = { session: 's1', buyer: 'B', providers: ['H', 'P1', 'P2'] }
  const silent = (peer: string, relayedBy?: string) => (relayedBy
    ? { reason: 'peer_abort' as const, accused: null, by: relayedBy, detail: 'x', cause: { reason: 'timeout', accused: null, disputants: [relayedBy, peer], by: relayedBy } }
    : { reason: 'timeout' as const, accused: null, disputants: [run.providers[0], peer] as [string, string], detail: 'x' })
  const none = (): number => 0

  it('a party named silent, in our abort or in the cause we relay; never ourselves or a non-party', () => {
    const r = new RunRegistry()
    expect(peersToHangUp(silent('P1'), 'H', run, r, none)).toEqual(['P1'])
    expect(peersToHangUp(silent('P2', 'P1'), 'H', run, r, none)).toEqual(['P2'])
    expect(peersToHangUp(silent('M'), 'H', run, r, none)).toEqual([]) // not a party of the run
    expect(peersToHangUp(silent('H', 'P1'), 'H', run, r, none)).toEqual([]) // ourselves
    expect(peersToHangUp({ reason: 'bad_vector', accused: null, disputants: ['H', 'P1'], detail: 'x' }, 'H', run, r, none)).toEqual([]) // not a silence
  })

  it('not a peer another live run or accepted proposal involves, nor one with a negotiation of its own in flight here', () => {
    const r = new RunRegistry()
    r.expect({ proposal: 'aa'.repeat(32), buyer: 'C', providers: ['H', 'P1'], until: Date.now() + 60_000 })
    expect(peersToHangUp(silent('P1'), 'H', run, r, none)).toEqual([]) // P1 is in an accepted proposal
    const r2 = new RunRegistry()
    // P2 proposes a run of its own to us (a slot held): a co-provider's claim that it went silent cuts nothing
    expect(peersToHangUp(silent('P2', 'P1'), 'H', run, r2, (p) => (p === 'P2' ? 1 : 0))).toEqual([])
    // the run's buyer holds one slot for this very run: that alone does not protect it, a second one does
    expect(peersToHangUp(silent('B'), 'H', run, r2, (p) => (p === 'B' ? 1 : 0))).toEqual(['B'])
    expect(peersToHangUp(silent('B'), 'H', run, r2, (p) => (p === 'B' ? 2 : 0))).toEqual([])
  })
})

