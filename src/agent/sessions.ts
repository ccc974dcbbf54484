// A serving provider's runs in progress, and the routing of inbound masked-sum streams to them
// (protocols/masked-sum.md §5.1): START by session (else the run with that buyer), XCHECK by session
// (else by proposal digest, so the runner can raise buyer equivocation). A stream may arrive before
// its run is registered (a fast co-provider), so lookups wait a bounded time.
import type { Channel } from '../protocol/transport.ts'
import type { AbortInfo } from '../protocol/errors.ts'

export interface Deferred<T> {
  promise: Promise<T>
  resolve(v: T): void
  settled: boolean
}

export function deferred<T>(): Deferred<T> {
  const d = Promise.withResolvers<T>()
  const out: Deferred<T> = {
    promise: d.promise,
    settled: false,
    resolve(v) {
      if (out.settled) return
      out.settled = true
      d.resolve(v)
    }
  }
  return out
}

export interface ProviderRun {
  session: string
  proposal: string
  buyer: string
  providers: string[]
  buyerChannel: Deferred<Channel>
  peerChannels: Map<string, Deferred<Channel>>
  /** Set when the run failed before its runner took the channels: late streams get this abort. */
  aborted?: AbortInfo
}

export class RunRegistry {
  private readonly runs = new Map<string, ProviderRun>()
  private waiters: Array<() => void> = []

  add(run: ProviderRun): void {
    this.runs.set(run.session, run)
    for (const w of this.waiters.splice(0)) w()
  }

  remove(session: string): void {
    this.runs.delete(session)
  }

  get size(): number {
    return this.runs.size
  }

  private find(pred: (r: ProviderRun) => boolean): ProviderRun | undefined {
    for (const r of this.runs.values()) if (pred(r)) return r
    return undefined
  }

  /** Wait up to `ms` for a run matching `pred`. */
  async lookup(pred: (r: ProviderRun) => boolean, ms: number, signal: AbortSignal): Promise<ProviderRun | undefined> {
    const until = Date.now() + ms
    for (;;) {
      const hit = this.find(pred)
      if (hit || Date.now() >= until || signal.aborted) return hit
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(250, until - Date.now()))
        function done(): void {
          clearTimeout(t)
          resolve()
        }
        this.waiters.push(done)
      })
    }
  }
}
