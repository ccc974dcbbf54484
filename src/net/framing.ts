// Length-prefixed frames over a libp2p v3 stream, exposed as a protocol-layer Channel.
// Frame = u32 big-endian length || payload, length <= MAX_FRAME_BYTES (protocols/masked-sum.md §2).
import type { Stream } from '@libp2p/interface'
import { MessageQueue, type Channel } from '../protocol/transport.ts'
import { MAX_FRAME_BYTES } from './constants.ts'

export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError'
}

/** Incremental decoder: feed bytes, get complete frames. Never buffers more than one max frame. */
export class FrameDecoder {
  private buf: Uint8Array = new Uint8Array(0)
  private readonly max: number
  constructor(max = MAX_FRAME_BYTES) {
    this.max = max
  }

  push(bytes: Uint8Array): Uint8Array[] {
    this.buf = this.buf.length === 0 ? bytes : concat2(this.buf, bytes)
    const out: Uint8Array[] = []
    let off = 0
    while (this.buf.length - off >= 4) {
      const len = new DataView(this.buf.buffer, this.buf.byteOffset + off, 4).getUint32(0, false)
      if (len > this.max) throw new FrameTooLargeError(`frame of ${len} bytes exceeds the ${this.max}-byte limit`)
      if (this.buf.length - off - 4 < len) break
      out.push(this.buf.slice(off + 4, off + 4 + len))
      off += 4 + len
    }
    this.buf = off === this.buf.length ? new Uint8Array(0) : this.buf.subarray(off)
    return out
  }
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length)
  o.set(a)
  o.set(b, a.length)
  return o
}

export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_BYTES) throw new FrameTooLargeError(`refusing to send a ${payload.length}-byte frame`)
  const out = new Uint8Array(4 + payload.length)
  new DataView(out.buffer).setUint32(0, payload.length, false)
  out.set(payload, 4)
  return out
}

export interface StreamChannelOptions {
  /** Messages to deliver before anything read from the stream (a peeked first frame). */
  prepend?: Uint8Array[]
  /** Byte counters for benchmarks and progress. */
  counters?: { sent: number; received: number }
}

/** Adapt a libp2p stream to a Channel. `remote` must come from the connection (Noise-authenticated). */
export function channelFromStream(stream: Stream, remote: string, opts: StreamChannelOptions = {}): Channel {
  const queue = new MessageQueue()
  for (const m of opts.prepend ?? []) queue.push(m)
  const counters = opts.counters
  const decoder = new FrameDecoder()
  void (async () => {
    try {
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
        if (counters) counters.received += bytes.length
        for (const f of decoder.push(bytes)) queue.push(f)
      }
      queue.end()
    } catch (err) {
      queue.fail(err as Error)
      if (err instanceof FrameTooLargeError) stream.abort(err)
    }
  })()
  return {
    remote,
    async send(message) {
      const frame = encodeFrame(message)
      if (counters) counters.sent += frame.length
      if (!stream.send(frame)) await stream.onDrain()
    },
    receive: (o) => queue.shift(o?.signal),
    async close() {
      try {
        await stream.close()
      } catch {
        // already closed or reset: nothing left to flush
      }
    },
    abort(err) {
      queue.fail(err)
      stream.abort(err)
    }
  }
}

/** Read exactly one frame from a fresh inbound stream, then hand back a Channel that replays it. */
export async function acceptChannel(stream: Stream, remote: string, signal: AbortSignal): Promise<{ first: Uint8Array; channel: Channel }> {
  const ch = channelFromStream(stream, remote)
  const first = await ch.receive({ signal })
  let replayed = false
  return {
    first,
    channel: {
      remote,
      send: (m) => ch.send(m),
      async receive(o) {
        if (!replayed) {
          replayed = true
          return first
        }
        return ch.receive(o)
      },
      close: () => ch.close(),
      abort: (e) => ch.abort(e)
    }
  }
}
