// Yamux window updates at half the window (src/net/yamux-window.ts), on a real YamuxStream whose
// outgoing frames are recorded: small data frames are no longer each answered with a WINDOW_UPDATE,
// the update still comes once half the window is used, and SYN/ACK still go out at once.
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { YamuxStream, StreamState } from '@chainsafe/libp2p-yamux/stream'
import { installHalfWindowUpdates } from '../../src/net/yamux-window.ts'

const WINDOW = 256 * 1024 // yamux's initial stream window
const DATA = 0 // FrameType.Data
const WINDOW_UPDATE = 1 // FrameType.WindowUpdate

interface Sent { type: number; flag: number; length: number }

function stream(state: StreamState): { s: YamuxStream; sent: Sent[] } {
  const sent: Sent[] = []
  const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log }) as never
  const s = new YamuxStream({
    id: '1', streamId: 1, direction: 'inbound', log, state, getRTT: () => -1,
    sendFrame: (h) => {
      sent.push({ type: h.type, flag: h.flag, length: h.length })
      return true
    }
  })
  return { s, sent }
}

function data(s: YamuxStream, bytes: number): void {
  s.handleData({ header: { type: DATA, flag: 0, streamID: 1, length: bytes, version: 0 }, data: new Uint8ArrayList(new Uint8Array(bytes)) } as never)
}

describe('yamux window updates at half the window', () => {
  installHalfWindowUpdates()

  it('small data frames get no update until half the window is consumed, then one for all of it', () => {
    const { s, sent } = stream(StreamState.Established)
    for (let i = 0; i < 100; i++) data(s, 1000) // 100 kB < 128 KiB
    expect(sent.filter((f) => f.type === WINDOW_UPDATE)).toHaveLength(0)
    data(s, 40_000) // 140 kB > half
    const updates = sent.filter((f) => f.type === WINDOW_UPDATE)
    expect(updates).toHaveLength(1)
    expect(updates[0]?.length).toBe(140_000)
  })

  it('a sender whose window is exhausted always gets its update', () => {
    const { s, sent } = stream(StreamState.Established)
    data(s, WINDOW)
    expect(sent.filter((f) => f.type === WINDOW_UPDATE).map((f) => f.length)).toEqual([WINDOW])
  })

  it('the ACK of an inbound stream still goes out with its first update', () => {
    const { s, sent } = stream(StreamState.SYNReceived)
    data(s, 10)
    expect(sent).toHaveLength(1)
    expect(sent[0]?.type).toBe(WINDOW_UPDATE)
    expect((sent[0]?.flag ?? 0) & 0x2).toBe(0x2) // Flag.ACK
  })
})
