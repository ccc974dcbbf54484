// The privacy budget ledger per (buyer, data source) at a provider (protocols/privacy.md §8). Pure logic over a
// small append-only storage interface, so it can sit on the agent's durable store. Units: ρ (zCDP), which
// composes by addition; the budget's (ε, δ) is converted once by the tight conversion (accounting.ts).
//
// Life of a run's cost: RESERVED when the provider signs its ACCEPT, COMMITTED when it reveals its self-mask
// seed (from then on a result may exist), RELEASED when the run aborts before that. Rules:
//  - reserve and commit are durable (the store's append resolved) before the message that depends on them is
//    sent: the caller awaits them first;
//  - reservations are atomic: check-and-append is serialised, so concurrent runs cannot both fit in one remainder;
//  - recovery after a crash (open()): a reservation with neither a commit ("seed revealed") nor a release record is
//    released, because the commit record always precedes the reveal; a commit is never lost;
//  - rolling window: a committed cost counts for `windowMs` after its commit; a pending reservation counts in full.
import { rhoForEpsilonDelta, zcdpEpsilon } from './accounting.ts'

export type LedgerRecord =
  | { readonly type: 'reserve'; readonly run: string; readonly buyer: string; readonly source: string; readonly rho: number; readonly at: number }
  | { readonly type: 'commit'; readonly run: string; readonly at: number }
  | { readonly type: 'release'; readonly run: string; readonly at: number; readonly reason: string }

/** Append-only durable storage: `append` resolves only once the record survives a crash (e.g. after fsync). */
export interface LedgerStore {
  append(record: LedgerRecord): Promise<void>
  /** every record appended so far, in order */
  replay(): Promise<LedgerRecord[]>
}

export class MemoryLedgerStore implements LedgerStore {
  readonly records: LedgerRecord[] = []
  append(record: LedgerRecord): Promise<void> {
    this.records.push(record)
    return Promise.resolve()
  }
  replay(): Promise<LedgerRecord[]> {
    return Promise.resolve([...this.records])
  }
}

/** A provider's budget for one (buyer, data source): (ε, δ) over a rolling window. */
export interface BudgetPolicy {
  readonly epsilon: number
  readonly delta: number
  readonly windowMs: number
}

export interface BudgetStatus {
  readonly buyer: string
  readonly source: string
  /** ρ committed within the window */
  readonly spentRho: number
  /** ρ reserved by runs not yet committed or released */
  readonly reservedRho: number
  readonly budgetRho: number
  readonly remainingRho: number
  /** the ε (at the budget's δ) that spent + reserved amounts to */
  readonly usedEpsilon: number
  /** when the oldest committed cost in the window expires, or null */
  readonly nextRefresh: number | null
}

export type ReserveResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'privacy_budget'; readonly message: string; readonly remainingRho: number; readonly refreshAt: number | null }

interface Entry {
  readonly run: string
  readonly buyer: string
  readonly source: string
  readonly rho: number
  state: 'reserved' | 'committed' | 'released'
  committedAt: number
}

const key = (buyer: string, source: string): string => `${buyer}\u0000${source}`

export class LedgerError extends Error {
  override readonly name = 'LedgerError'
}

export class PrivacyLedger {
  private readonly entries = new Map<string, Entry[]>() // by run
  private tail: Promise<unknown> = Promise.resolve()
  private readonly store: LedgerStore
  private readonly now: () => number

  private constructor(store: LedgerStore, now: () => number) {
    this.store = store
    this.now = now
  }

  /**
   * Replays the store and releases (durably, reason "recovered") every reservation that has neither a commit nor a
   * release: its run died before revealing its seed. Returns the ledger and the runs so released.
   */
  static async open(store: LedgerStore, opts: { now?: () => number } = {}): Promise<{ ledger: PrivacyLedger; recovered: string[] }> {
    const ledger = new PrivacyLedger(store, opts.now ?? Date.now)
    for (const r of await store.replay()) ledger.apply(r)
    const recovered: string[] = []
    for (const [run, list] of ledger.entries) {
      if (list.some((e) => e.state === 'reserved')) {
        const rec: LedgerRecord = { type: 'release', run, at: ledger.now(), reason: 'recovered' }
        await store.append(rec)
        ledger.apply(rec)
        recovered.push(run)
      }
    }
    return { ledger, recovered }
  }

  private apply(r: LedgerRecord): void {
    if (r.type === 'reserve') {
      const list = this.entries.get(r.run) ?? []
      list.push({ run: r.run, buyer: r.buyer, source: r.source, rho: r.rho, state: 'reserved', committedAt: 0 })
      this.entries.set(r.run, list)
      return
    }
    for (const e of this.entries.get(r.run) ?? []) {
      if (e.state !== 'reserved') continue
      if (r.type === 'commit') {
        e.state = 'committed'
        e.committedAt = r.at
      } else e.state = 'released'
    }
  }

  /** serialise check-then-append so that concurrent runs reserve atomically */
  private locked<T>(f: () => Promise<T>): Promise<T> {
    const p = this.tail.then(f, f)
    this.tail = p.catch(() => undefined)
    return p
  }

  private usage(buyer: string, source: string, now: number, windowMs: number): { spent: number; reserved: number; expiries: { at: number; rho: number }[] } {
    let spent = 0
    let reserved = 0
    const expiries: { at: number; rho: number }[] = []
    for (const list of this.entries.values()) {
      for (const e of list) {
        if (e.buyer !== buyer || e.source !== source) continue
        if (e.state === 'reserved') reserved += e.rho
        else if (e.state === 'committed' && e.committedAt + windowMs > now) {
          spent += e.rho
          expiries.push({ at: e.committedAt + windowMs, rho: e.rho })
        }
      }
    }
    expiries.sort((a, b) => a.at - b.at)
    return { spent, reserved, expiries }
  }

  /**
   * Reserves `rho` for run `run` against (buyer, source) under `budget`, durably, or refuses with `privacy_budget`
   * saying what remains and when enough refreshes. Await it before sending the ACCEPT. A run may reserve several
   * sources; a second reservation of the same (run, source) is refused as a LedgerError.
   */
  reserve(req: { run: string; buyer: string; source: string; rho: number; budget: BudgetPolicy }): Promise<ReserveResult> {
    return this.locked(async () => {
      if (!(Number.isFinite(req.rho) && req.rho > 0)) throw new LedgerError(`expected a positive rho, got ${req.rho}`)
      const prior = this.entries.get(req.run) ?? []
      if (prior.some((e) => e.source === req.source || e.state !== 'reserved')) throw new LedgerError(`run ${req.run} already has a ledger entry for this source or is finished`)
      const now = this.now()
      const budgetRho = rhoForEpsilonDelta(req.budget.epsilon, req.budget.delta)
      const { spent, reserved, expiries } = this.usage(req.buyer, req.source, now, req.budget.windowMs)
      const remaining = budgetRho - spent - reserved
      if (req.rho > remaining) {
        // the earliest time the remainder covers the request, if pending reservations all commit
        let free = remaining
        let refreshAt: number | null = null
        for (const x of expiries) {
          free += x.rho
          if (free >= req.rho) {
            refreshAt = x.at
            break
          }
        }
        const when = refreshAt === null ? 'not within the window (reserved runs must finish first, or the query is larger than the budget)' : new Date(refreshAt).toISOString()
        return {
          ok: false,
          code: 'privacy_budget',
          remainingRho: Math.max(0, remaining),
          refreshAt,
          message: `privacy budget exhausted for this buyer and data source: needs rho ${fmt(req.rho)}, remaining ${fmt(Math.max(0, remaining))} of ${fmt(budgetRho)} (epsilon ${req.budget.epsilon}, delta ${req.budget.delta}, ${Math.round(req.budget.windowMs / 86_400_000)} days); enough refreshes ${when}`
        }
      }
      const rec: LedgerRecord = { type: 'reserve', run: req.run, buyer: req.buyer, source: req.source, rho: req.rho, at: now }
      await this.store.append(rec)
      this.apply(rec)
      return { ok: true }
    })
  }

  /** Commits every reservation of `run` durably: await it BEFORE revealing the self-mask seed. Idempotent. */
  commit(run: string): Promise<void> {
    return this.locked(async () => {
      const list = this.entries.get(run)
      if (!list || list.length === 0) throw new LedgerError(`no reservation for run ${run}`)
      if (list.every((e) => e.state === 'committed')) return
      if (list.some((e) => e.state === 'released')) throw new LedgerError(`run ${run} was released; it cannot reveal`)
      const rec: LedgerRecord = { type: 'commit', run, at: this.now() }
      await this.store.append(rec)
      this.apply(rec)
    })
  }

  /**
   * Releases the run's reservations when it aborts before the seed reveal. Returns false (and changes nothing)
   * when the run has committed: from the reveal on, the cost stays spent whatever happens.
   */
  release(run: string, reason: string): Promise<boolean> {
    return this.locked(async () => {
      const list = this.entries.get(run)
      if (!list || !list.some((e) => e.state === 'reserved')) return false
      const rec: LedgerRecord = { type: 'release', run, at: this.now(), reason }
      await this.store.append(rec)
      this.apply(rec)
      return true
    })
  }

  /** spent, reserved and remaining per (buyer, source) seen in the ledger; `budgetOf` gives each pair's policy */
  status(budgetOf: (buyer: string, source: string) => BudgetPolicy, filter: { buyer?: string } = {}): BudgetStatus[] {
    const pairs = new Map<string, { buyer: string; source: string }>()
    for (const list of this.entries.values()) for (const e of list) pairs.set(key(e.buyer, e.source), { buyer: e.buyer, source: e.source })
    const now = this.now()
    const out: BudgetStatus[] = []
    for (const { buyer, source } of [...pairs.values()].sort((a, b) => (a.buyer === b.buyer ? cmp(a.source, b.source) : cmp(a.buyer, b.buyer)))) {
      if (filter.buyer !== undefined && buyer !== filter.buyer) continue
      const budget = budgetOf(buyer, source)
      const budgetRho = rhoForEpsilonDelta(budget.epsilon, budget.delta)
      const { spent, reserved, expiries } = this.usage(buyer, source, now, budget.windowMs)
      out.push({
        buyer,
        source,
        spentRho: spent,
        reservedRho: reserved,
        budgetRho,
        remainingRho: Math.max(0, budgetRho - spent - reserved),
        usedEpsilon: zcdpEpsilon(spent + reserved, budget.delta),
        nextRefresh: expiries[0]?.at ?? null
      })
    }
    return out
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const fmt = (x: number): string => x.toPrecision(4)

/** Validates a record read back from storage (replay of a file someone may have edited). */
export function parseLedgerRecord(x: unknown): LedgerRecord {
  const bad = (): never => {
    throw new LedgerError(`malformed ledger record: ${JSON.stringify(x)?.slice(0, 200)}`)
  }
  if (typeof x !== 'object' || x === null) return bad()
  const r = x as Record<string, unknown>
  const str = (k: string): string => (typeof r[k] === 'string' && (r[k] as string).length > 0 ? (r[k] as string) : bad())
  const num = (k: string): number => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : bad())
  switch (r.type) {
    case 'reserve': {
      const rho = num('rho')
      if (!(rho > 0)) bad()
      return { type: 'reserve', run: str('run'), buyer: str('buyer'), source: str('source'), rho, at: num('at') }
    }
    case 'commit':
      return { type: 'commit', run: str('run'), at: num('at') }
    case 'release':
      return { type: 'release', run: str('run'), at: num('at'), reason: str('reason') }
    default:
      return bad()
  }
}
