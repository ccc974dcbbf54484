// The run context's reading of a stream (src/protocol/run-context.ts): how each way a receive can fail is
// reported (masked-sum.md §8): a closed stream or a missed deadline is a silence (check 8), an oversize
// frame is a fault the stream showed (malformed_message), which serve never treats as a silence.
import { describe, expect, it } from 'vitest'
import { RunContext } from '../../src/protocol/run-context.ts'
import { ProtocolAbort } from '../../src/protocol/errors.ts'
import { ChannelClosedError, FrameTooLargeError, type Channel } from '../../src/protocol/transport.ts'
import { makeParty } from '../helpers/parties.ts'

/** A channel whose receive fails with `err` once. */
const failing = (remote: string, err: Error): Channel => ({
  remote, send: async () => {}, receive: async () => { throw err }, close: async () => {}, abort: () => {}
})

describe('RunContext.next', () => {
  it.each([
    ['an oversize frame', new FrameTooLargeError('frame of 2 MiB'), 'malformed_message', /frame above the 1 MiB limit instead of CHUNK/],
    ['a closed stream', new ChannelClosedError('closed'), 'timeout', /closed the stream before sending CHUNK/]
  ])('%s → %s naming the peer', async (_n, err, reason, detail) => {
    const me = await makeParty()
    const ctx = new RunContext(me.signer, new Uint8Array(32))
    const e = await ctx.next(failing('12D3KooWpeer', err), 5000, 'CHUNK').catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ProtocolAbort)
    expect((e as ProtocolAbort).reason).toBe(reason)
    expect((e as ProtocolAbort).info.detail).toMatch(detail)
  })
})
