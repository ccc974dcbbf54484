// A serving provider's runs in progress, and the routing of inbound masked-sum streams to them
// (protocols/masked-sum.md §5.1): START by session, XCHECK by session (else by proposal digest, so
// the runner can raise buyer equivocation). A stream may arrive before its run is registered (a fast
// co-provider's XCHECK often beats our certificate): it may wait only if it belongs to a proposal this
// agent accepted and whose certificate is still due (`awaitingCertificate`); any other is refused at once.
import type { Channel } from '../protocol/transport.ts'
import type { AbortInfo } from '../protocol/errors.ts'
import { MSG } from '../protocol/masked-sum-messages.ts'
import { isHexOf, isJsonObject, parseBoundedJson } from '../protocol/bounded-json.ts'

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

/** A proposal this agent accepted whose certificate has not arrived yet. */
export interface AcceptedProposal {
  /** Proposal digest, hex. */
  proposal: string
  buyer: string
  providers: string[]
  /** ms since the epoch: streams for it wait until then (negotiate_s + margin after the acceptance). */
  until: number
  /** Set when its negotiation failed: streams still waiting, or arriving shortly after, get this abort. */
  aborted?: AbortInfo
}

export class RunRegistry {
  private readonly runs = new Map<string, ProviderRun>()
  private readonly accepted = new Map<string, AcceptedProposal>()
  private waiters: Array<() => void> = []

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  add(run: ProviderRun): void {
    this.runs.set(run.session, run)
    this.wake()
  }

  /** Record an accepted proposal (before ACCEPT is sent): streams naming it may now wait for its run. */
  expect(a: AcceptedProposal): void {
    this.accepted.set(a.proposal, a)
  }

  /**
   * The proposal's certificate arrived (its run is registered) or its negotiation ended. With
   * `aborted`, streams waiting for it are refused with that abort, and so are those arriving in the
   * next 30 s; otherwise it is forgotten at once.
   */
  settle(proposal: string, aborted?: AbortInfo): void {
    const a = this.accepted.get(proposal)
    if (!a) return
    if (aborted && !a.aborted) {
      a.aborted = aborted
      a.until = Math.min(a.until, Date.now() + 30_000)
      setTimeout(() => {
        if (this.accepted.get(proposal) === a) this.accepted.delete(proposal)
      }, 30_000).unref()
    } else if (!aborted && !a.aborted) {
      this.accepted.delete(proposal) // (a failed one stays until its 30 s are over)
    }
    this.wake()
  }

  /**
   * The accepted proposal an inbound stream may belong to while its run is not registered yet: for
   * START, one from that buyer; for XCHECK, the one it names, if the sender is among its providers.
   */
  awaitingCertificate(head: { kind: 'start' | 'xcheck'; proposal?: string }, remote: string): AcceptedProposal | undefined {
    if (head.kind === 'xcheck') {
      const a = head.proposal ? this.accepted.get(head.proposal) : undefined
      return a && a.providers.includes(remote) ? a : undefined
    }
    // a START names only its session, which exists only once its certificate does: prefer the buyer's proposal still
    // waiting for its certificate over one whose negotiation failed (a quick retry after a failed proposal)
    let failed: AcceptedProposal | undefined
    for (const a of this.accepted.values()) {
      if (a.buyer !== remote) continue
      if (!a.aborted) return a
      failed ??= a
    }
    return failed
  }

  /** Whether a run in progress (other than `except`, not aborted) or an accepted proposal awaiting its certificate involves `peer`. */
  involves(peer: string, except?: string): boolean {
    for (const r of this.runs.values()) if (r.session !== except && !r.aborted && (r.buyer === peer || r.providers.includes(peer))) return true
    for (const a of this.accepted.values()) if (!a.aborted && (a.buyer === peer || a.providers.includes(peer))) return true
    return false
  }

  get acceptedCount(): number {
    return this.accepted.size
  }

  remove(session: string): void {
    this.runs.delete(session)
  }

  get size(): number {
    return this.runs.size
  }

  find(pred: (r: ProviderRun) => boolean): ProviderRun | undefined {
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

export type RouteHead = { kind: 'start' | 'xcheck'; session: string; proposal?: string }

/**
 * The routing fields of a first START / XCHECK frame, parsed within WIRE_JSON_LIMITS: a START names
 * a session, an XCHECK a session and a proposal (32 bytes of hex each). Full validation of the
 * message happens in the runner; anything that cannot be routed is null.
 */
export function routeHead(first: Uint8Array): RouteHead | null {
  if (first[0] !== MSG.start && first[0] !== MSG.xcheck) return null
  let m: unknown
  try {
    m = parseBoundedJson(first.subarray(1))
  } catch {
    return null
  }
  if (!isJsonObject(m) || !isHexOf(m.session, 32)) return null
  if (first[0] === MSG.start) return { kind: 'start', session: m.session }
  if (!isHexOf(m.proposal, 32)) return null
  return { kind: 'xcheck', session: m.session, proposal: m.proposal }
}

/** The peers an abort says did not answer (reason timeout / unreachable), in it or in the abort it relays; never self. */
export function silentPeers(info: AbortInfo, self: string): string[] {
  const out = new Set<string>()
  for (const a of [info, info.cause]) {
    if (typeof a !== 'object' || a === null) continue
    const { reason, accused, disputants } = a as { reason?: unknown; accused?: unknown; disputants?: unknown }
    if (reason !== 'timeout' && reason !== 'unreachable') continue
    const peer = typeof accused === 'string' ? accused : Array.isArray(disputants) && typeof disputants[1] === 'string' ? disputants[1] : null
    if (peer && peer !== self) out.add(peer)
  }
  return [...out]
}

/**
 * Whom serve hangs up on after a certified run `run` aborted with `info` (README "serve in the background"):
 * a party of the run named silent, unless another live run or accepted proposal involves it, or it has a
 * negotiation of its own in flight here (`heldBy`: its run slots; the run itself holds one of its buyer's).
 * The silence may be only a co-provider's unverified claim in a relayed cause, so nothing else is cut.
 */
export function peersToHangUp(info: AbortInfo, self: string, run: Pick<ProviderRun, 'session' | 'buyer' | 'providers'>, registry: RunRegistry, heldBy: (peer: string) => number): string[] {
  const parties = new Set([run.buyer, ...run.providers])
  return silentPeers(info, self).filter((peer) =>
    parties.has(peer) && !registry.involves(peer, run.session) && heldBy(peer) <= (peer === run.buyer ? 1 : 0))
}

