// Length-prefixed frames over a libp2p v3 stream, exposed as a protocol-layer Channel.
// Frame = u32 big-endian length || payload, length <= MAX_FRAME_BYTES (protocols/masked-sum.md §2).
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, MessageQueue, QUEUE_HIGH_WATER, QUEUE_LOW_WATER, type Channel } from '../protocol/transport.ts'
import { MAX_FRAME_BYTES } from './constants.ts'

export { FrameTooLargeError }

/**
 * Incremental decoder: feed bytes, get complete frames. Received pieces are kept as a list and each
 * frame is copied exactly once, into a buffer of its own (so a CHUNK's u64 values start 8-byte
 * aligned and never need a second copy). Concatenating on every push, as this once did, copied a
 * 512 KiB frame that arrives in 64 KiB Noise messages about four times over. Never buffers more
 * than one max frame plus one piece.
 */
export class FrameDecoder {
  private parts: Uint8Array[] = []
  private head = 0 // read position inside parts[0]
  private have = 0 // unread bytes across parts
  private need = -1 // payload length of the frame being read, -1 until its 4-byte header is in
  private readonly max: number
  constructor(max = MAX_FRAME_BYTES) {
    this.max = max
  }

  /** Feed one received piece (or every piece of a buffer list). */
  push(bytes: Uint8Array | Iterable<Uint8Array>): Uint8Array[] {
    if (bytes instanceof Uint8Array) this.append(bytes)
    else for (const b of bytes) this.append(b)
    const out: Uint8Array[] = []
    for (;;) {
      if (this.need < 0) {
        if (this.have < 4) break
        const h = this.take(4)
        const len = ((h[0] as number) << 24 | (h[1] as number) << 16 | (h[2] as number) << 8 | (h[3] as number)) >>> 0
        if (len > this.max) throw new FrameTooLargeError(`frame of ${len} bytes exceeds the ${this.max}-byte limit`)
        this.need = len
      }
      if (this.have < this.need) break
      out.push(this.take(this.need))
      this.need = -1
    }
    return out
  }

  private append(b: Uint8Array): void {
    if (b.length === 0) return
    this.parts.push(b)
    this.have += b.length
  }

  /** Copy the next n buffered bytes into a new buffer and consume them. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n)
    let w = 0
    while (w < n) {
      const p = this.parts[0] as Uint8Array
      const k = Math.min(n - w, p.length - this.head)
      out.set(p.subarray(this.head, this.head + k), w)
      w += k
      this.head += k
      if (this.head === p.length) {
        this.parts.shift()
        this.head = 0
      }
    }
    this.have -= n
    return out
  }
}

/** The 4-byte big-endian length header of a frame. */
export function frameHeader(length: number): Uint8Array {
  if (length > MAX_FRAME_BYTES) throw new FrameTooLargeError(`refusing to send a ${length}-byte frame`)
  const h = new Uint8Array(4)
  new DataView(h.buffer).setUint32(0, length, false)
  return h
}

export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length)
  out.set(frameHeader(payload.length))
  out.set(payload, 4)
  return out
}

/**
 * Unsent bytes a stream may hold before send() waits. Large on purpose: measured here, any bound
 * near the yamux window (1–4 MiB) slowed a 5-provider million-cell run by 35–65 % on 2 shared cores
 * (a provider that can run ahead finishes its CPU work sooner and leaves the cores to the buyer);
 * 16 MiB changes nothing at L ≤ 2M and caps a 10M-cell vector's backlog at a fifth of it.
 */
export const SEND_HIGH_WATER = 16 * 1024 * 1024

export interface StreamChannelOptions {
  /** Messages to deliver before anything read from the stream (a peeked first frame). */
  prepend?: Uint8Array[]
  /** Byte counters for benchmarks and progress. */
  counters?: { sent: number; received: number }
  /** Largest frame accepted from the peer (default MAX_FRAME_BYTES); a larger one aborts the stream. */
  maxFrameBytes?: number
}

/** Adapt a libp2p stream to a Channel. `remote` must come from the connection (Noise-authenticated). */
export function channelFromStream(stream: Stream, remote: string, opts: StreamChannelOptions = {}): Channel {
  const queue = new MessageQueue()
  for (const m of opts.prepend ?? []) queue.push(m)
  const counters = opts.counters
  const decoder = new FrameDecoder(opts.maxFrameBytes)
  void (async () => {
    try {
      for await (const chunk of stream) {
        if (counters) counters.received += chunk.byteLength
        // a Uint8ArrayList is iterated piece by piece: flattening it first would copy every byte twice
        for (const f of decoder.push(chunk)) queue.push(f)
        // backpressure: libp2p's iterator buffers without bound and yamux grants window on receipt,
        // so a reader that falls behind must pause the stream until its queue has drained
        if (queue.bytes > QUEUE_HIGH_WATER) {
          const pausable = stream.readStatus === 'readable' // a closing stream only drains what it has
          if (pausable) stream.pause()
          await queue.drained(QUEUE_LOW_WATER)
          if (pausable && stream.readStatus === 'paused') stream.resume()
        }
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
      // header and payload go to the muxer as one buffer list: no copy of the payload here
      const frame = new Uint8ArrayList(frameHeader(message.length), message)
      if (counters) counters.sent += frame.byteLength
      if (!stream.send(frame)) await stream.onDrain()
      // yamux relays every drain of the connection to each stream, so one onDrain() can resolve while
      // this stream's window is still shut and its write buffer (unbounded in libp2p) keeps growing:
      // a whole vector piled up in memory, and a buyer that stopped reading went unnoticed until a
      // later phase. Beyond SEND_HIGH_WATER unsent bytes a send waits for the stream itself.
      while (stream.writeBufferLength > SEND_HIGH_WATER && stream.writeStatus === 'writable') {
        const spurious = stream.writeBufferLength
        await stream.onDrain()
        if (stream.writeBufferLength >= spurious) await new Promise((r) => setImmediate(r)) // never spin
      }
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
