// One protocol run's plumbing, shared by the buyer and provider runners: a reader per channel that
// turns a received ABORT into the run's failure, per-phase deadlines that accuse the silent peer
// (check 8), and a single failure that every pending wait observes (masked-sum.md §8).
import { ChannelClosedError, FrameTooLargeError, MessageQueue, QUEUE_HIGH_WATER, QUEUE_LOW_WATER, type Channel } from './transport.ts'
import { ProtocolAbort, type AbortInfo } from './errors.ts'
import { encodeAbort, heardAbort, MSG_ABORT } from './abort.ts'
import { settle, type EvidenceDeps } from './evidence.ts'
import type { Signer } from '../crypto/sign.ts'

export interface RunContextOptions {
  /** The run's buyer: names the buyer–provider dispute of a `no_certificate` notice. */
  buyer?: string
  /** Checks the evidence of this party's own accusations (evidence.ts settle). */
  evidence?: EvidenceDeps
  /**
   * Absolute time (ms since the epoch) after which the run fails with `timeout`: the agreement's
   * deadline plus the clock-skew allowance (SessionParams.deadline, masked-sum.md §2).
   */
  deadline?: number
}

export class RunContext {
  private readonly ctrl = new AbortController()
  private readonly inboxes = new Map<Channel, MessageQueue>()
  private readonly channels = new Set<Channel>()
  private readonly unlink: () => void

  readonly signer: Signer
  readonly session: Uint8Array | null
  private readonly opts: RunContextOptions
  private readonly deadlineTimer: NodeJS.Timeout | undefined

  constructor(signer: Signer, session: Uint8Array | null, outer?: AbortSignal, opts: RunContextOptions = {}) {
    this.signer = signer
    this.session = session
    this.opts = opts
    const onOuter = (): void => this.fail(outer?.reason instanceof ProtocolAbort ? outer.reason : new ProtocolAbort({
      reason: 'local_error', accused: null, detail: `run cancelled locally (${(outer?.reason as Error)?.message ?? 'aborted'})`
    }))
    outer?.addEventListener('abort', onOuter, { once: true })
    this.unlink = () => outer?.removeEventListener('abort', onOuter)
    if (outer?.aborted) onOuter()
    if (opts.deadline !== undefined) {
      const expire = (): void => this.fail(new ProtocolAbort({ reason: 'timeout', accused: null, detail: 'the agreement\'s deadline passed before the run ended' }))
      this.deadlineTimer = setTimeout(expire, Math.max(0, opts.deadline - Date.now()))
    }
  }

  get signal(): AbortSignal {
    return this.ctrl.signal
  }

  get failure(): ProtocolAbort | null {
    return this.ctrl.signal.aborted ? (this.ctrl.signal.reason as ProtocolAbort) : null
  }

  /**
   * Record the run's failure (first one wins) and wake every wait. Settled first: an accusation
   * that its evidence does not prove is recorded (and later signed) as the dispute it is.
   */
  fail(err: ProtocolAbort): void {
    if (this.ctrl.signal.aborted) return
    const info = settle(err.info, this.signer.peerId, this.session, this.opts.evidence)
    this.ctrl.abort(info === err.info ? err : new ProtocolAbort(info))
  }

  /** Start reading `ch` in the background; an ABORT frame from it fails the run. */
  watch(ch: Channel): void {
    if (this.inboxes.has(ch)) return
    const q = new MessageQueue()
    this.inboxes.set(ch, q)
    this.channels.add(ch)
    // The reader must never reject: it runs detached, so anything it threw would be an unhandled
    // rejection (issue 16: `0x7f null` once killed a serving agent here). Every failure fails the run.
    void (async () => {
      for (;;) {
        let m: Uint8Array
        try {
          m = await ch.receive({ signal: this.ctrl.signal })
        } catch (e) {
          if (e instanceof ChannelClosedError) q.end()
          else q.fail(e as Error)
          return
        }
        if (m[0] === MSG_ABORT) {
          // a relay: the sender's signed abort becomes our cause; we accuse nobody (abort.ts)
          this.fail(new ProtocolAbort(heardAbort(m, ch.remote, { self: this.signer.peerId, session: this.session, buyer: this.opts.buyer })))
          q.end()
          return
        }
        q.push(m)
        // read ahead no further than the runner consumes (the channel then pauses its stream)
        if (q.bytes > QUEUE_HIGH_WATER) await q.drained(QUEUE_LOW_WATER)
      }
    })().catch((e: unknown) => {
      this.fail(asAbort(e))
      q.fail(e instanceof Error ? e : new Error(String(e)))
    })
  }

  /**
   * A channel that may still be opening: watched once it arrives. If the run failed before it
   * arrived, it is told why (ABORT, then closed) so its peer stops at once, and the promise rejects
   * with the run's failure.
   */
  adopt(p: Promise<Channel>): Promise<Channel> {
    const q = p.then(async (ch) => {
      const failure = this.failure
      if (failure) {
        if (failure.info.by !== ch.remote) await this.tell(ch, encodeAbort(this.signer, this.session, ch.remote, failure.info))
        throw failure
      }
      this.watch(ch)
      return ch
    })
    q.catch(() => {})
    return q
  }

  /** `p`, unless the run fails first (its listener is removed either way: send() races every chunk). */
  async race<T>(p: Promise<T>): Promise<T> {
    if (this.failure) throw this.failure
    let onAbort = (): void => {}
    const failed = new Promise<never>((_, reject) => {
      onAbort = () => reject(this.failure as Error)
      this.ctrl.signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([p, failed])
    } finally {
      this.ctrl.signal.removeEventListener('abort', onAbort)
    }
  }

  /** The next frame from `ch` within `ms`, else a timeout naming `ch.remote` (settled as "no answer from"). */
  async next(ch: Channel, ms: number, waitingFor: string): Promise<Uint8Array> {
    this.watch(ch)
    const q = this.inboxes.get(ch) as MessageQueue
    // a ref'd timer (AbortSignal.timeout is unref'd): the process must live to report the silence
    const tc = new AbortController()
    const timer = tc.signal
    const t = setTimeout(() => tc.abort(new Error('phase deadline')), Math.max(1, ms))
    const both = AbortSignal.any([timer, this.ctrl.signal])
    try {
      return await q.shift(both)
    } catch (e) {
      if (this.failure) throw this.failure
      if (timer.aborted) {
        throw new ProtocolAbort({ reason: 'timeout', accused: ch.remote, detail: `${ch.remote} sent no ${waitingFor} within ${Math.round(ms / 1000)} s` })
      }
      if (e instanceof ChannelClosedError) {
        throw new ProtocolAbort({ reason: 'timeout', accused: ch.remote, detail: `${ch.remote} closed the stream before sending ${waitingFor}` })
      }
      if (e instanceof FrameTooLargeError) {
        // a fault the stream shows us only (a dispute), not a silence: masked-sum.md §8, malformed_message
        throw new ProtocolAbort({ reason: 'malformed_message', accused: ch.remote, detail: `${ch.remote} sent a frame above the 1 MiB limit instead of ${waitingFor}` })
      }
      throw new ProtocolAbort({ reason: 'timeout', accused: ch.remote, detail: `${ch.remote}: ${(e as Error).message}` })
    } finally {
      clearTimeout(t)
    }
  }

  /**
   * Send, failing the run (not just this call) if the peer is gone or does not take the frame
   * within `ms` (a peer that stops reading stalls our send under backpressure: check 8).
   */
  async send(ch: Channel, frame: Uint8Array, ms = 60_000): Promise<void> {
    this.channels.add(ch)
    if (this.failure) throw this.failure
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProtocolAbort({ reason: 'timeout', accused: ch.remote, detail: `${ch.remote} took no data for ${Math.round(ms / 1000)} s` })), ms)
    })
    stalled.catch(() => {})
    try {
      await this.race(Promise.race([ch.send(frame), stalled]))
    } catch (e) {
      if (e instanceof ProtocolAbort) throw e
      if (this.failure) throw this.failure
      throw new ProtocolAbort({ reason: 'timeout', accused: ch.remote, detail: `${ch.remote} went away: ${(e as Error).message}` })
    } finally {
      clearTimeout(timer)
    }
  }

  /** Tell every channel why the run ended (best effort, bounded), then tear them down. */
  async abortAll(info: AbortInfo): Promise<void> {
    await Promise.all([...this.channels].map(async (ch) => {
      if (info.by && info.by === ch.remote) return // do not echo an abort back to its sender
      await this.tell(ch, encodeAbort(this.signer, this.session, ch.remote, info)) // addressed: one signature per peer
    }))
    this.end()
  }

  /** Best effort, bounded: one ABORT frame, then close. */
  private async tell(ch: Channel, frame: Uint8Array): Promise<void> {
    try {
      await Promise.race([ch.send(frame), new Promise((r) => setTimeout(r, 1000))])
      await Promise.race([ch.close(), new Promise((r) => setTimeout(r, 500))])
    } catch {
      // peer already gone
    }
  }

  /** Close all channels gracefully and stop the readers. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.channels].map((ch) => Promise.race([ch.close().catch(() => {}), new Promise((r) => setTimeout(r, 1000))])))
  }

  end(): void {
    this.unlink()
    clearTimeout(this.deadlineTimer)
    for (const q of this.inboxes.values()) q.end()
  }
}

/** Normalise anything thrown inside a runner into the run's ProtocolAbort. */
export function asAbort(e: unknown): ProtocolAbort {
  if (e instanceof ProtocolAbort) return e
  return new ProtocolAbort({ reason: 'local_error', accused: null, detail: (e as Error)?.message ?? String(e) })
}
