// The protocol layer touches the network through exactly this interface (MPyC's lesson):
// a Channel is an ordered, reliable, authenticated message pipe to one remote peer.
// src/net adapts libp2p streams to it; memoryChannelPair() serves tests.

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError'
}

/** The peer sent a frame above the transport's limit (1 MiB, masked-sum.md §5); the stream is reset. */
export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError'
}

export interface ReceiveOptions {
  signal?: AbortSignal
}

export interface Channel {
  /** Authenticated peer ID of the remote end (from the Noise handshake, never from a message). */
  readonly remote: string
  /** Send one message (a frame payload). Resolves once the transport accepted it (backpressure). */
  send(message: Uint8Array): Promise<void>
  /** Next message; rejects with ChannelClosedError on end of stream, or the signal's reason on abort. */
  receive(opts?: ReceiveOptions): Promise<Uint8Array>
  /** Graceful close of our sending side. */
  close(): Promise<void>
  /** Tear the channel down at once. */
  abort(err: Error): void
}

/** Two connected in-memory channels. `a.remote === bName`, `b.remote === aName`. */
export function memoryChannelPair(aName: string, bName: string): [Channel, Channel] {
  const qa = new MessageQueue()
  const qb = new MessageQueue()
  const mk = (remote: string, inbox: MessageQueue, outbox: MessageQueue): Channel => ({
    remote,
    async send(m) {
      if (outbox.closed) throw new ChannelClosedError('channel closed')
      outbox.push(Uint8Array.from(m))
    },
    receive: (opts) => inbox.shift(opts?.signal),
    async close() {
      outbox.end()
    },
    abort(err) {
      inbox.fail(err)
      outbox.fail(err)
    }
  })
  return [mk(bName, qa, qb), mk(aName, qb, qa)]
}

/**
 * Unread bytes at which a reader stops pulling from its source, and the level it waits for before it
 * pulls again (the net adapter pauses the libp2p stream meanwhile, so yamux stops granting window and
 * the sender blocks). Two 512 KiB CHUNKs: a fast sender cannot make a slow reader buffer its vector.
 */
export const QUEUE_HIGH_WATER = 1024 * 1024
export const QUEUE_LOW_WATER = 512 * 1024

/** FIFO with async shift; used by memory channels and by the net adapter. */
export class MessageQueue {
  private items: Uint8Array[] = []
  private waiters: Array<{ resolve: (m: Uint8Array) => void; reject: (e: Error) => void }> = []
  private error: Error | null = null
  private ended = false
  private queued = 0
  private below: { limit: number; resolve: () => void } | null = null

  get closed(): boolean {
    return this.ended || this.error != null
  }

  /** Bytes pushed and not yet shifted. */
  get bytes(): number {
    return this.queued
  }

  push(m: Uint8Array): void {
    if (this.closed) return
    const w = this.waiters.shift()
    if (w) w.resolve(m)
    else {
      this.items.push(m)
      this.queued += m.length
    }
  }

  /** Resolves once at most `limit` bytes are queued, or the queue ends or fails (backpressure). */
  drained(limit: number): Promise<void> {
    if (this.queued <= limit || this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.below?.resolve()
      this.below = { limit, resolve }
    })
  }

  private release(): void {
    if (this.below && (this.queued <= this.below.limit || this.closed)) {
      const b = this.below
      this.below = null
      b.resolve()
    }
  }

  end(): void {
    if (this.closed) return
    this.ended = true
    for (const w of this.waiters.splice(0)) w.reject(new ChannelClosedError('channel closed by remote'))
    this.release()
  }

  fail(err: Error): void {
    if (this.error) return
    this.error = err
    for (const w of this.waiters.splice(0)) w.reject(err)
    this.release()
  }

  shift(signal?: AbortSignal): Promise<Uint8Array> {
    const m = this.items.shift()
    if (m) {
      this.queued -= m.length
      this.release()
      return Promise.resolve(m)
    }
    if (this.error) return Promise.reject(this.error)
    if (this.ended) return Promise.reject(new ChannelClosedError('channel closed by remote'))
    if (signal?.aborted) return Promise.reject(signal.reason as Error)
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (x: Uint8Array) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(x)
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        }
      }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(w)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(signal?.reason as Error)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(w)
    })
  }
}
