// The privacy budget ledger (protocols/privacy.md §8) on the agent's durable store (negotiation.md §6.3),
// namespace "dp": one entry per ledger record, never expiring, ordered by a sequence number assigned inside the
// store's transaction (so records of one run replay in the order they were written). Every append is fsync'ed
// before it returns, which is what PrivacyLedger needs: reserve before ACCEPT, commit before REVEAL.
import { PrivacyLedger, parseLedgerRecord, type BudgetPolicy, type BudgetStatus, type LedgerRecord, type LedgerStore } from '../privacy/ledger.ts'
import { zcdpEpsilon } from '../privacy/accounting.ts'
import type { DurableStore } from './store.ts'
import type { PrivacyRules } from '../policy/policy.ts'

const NS = 'dp'
const FOREVER = Number.MAX_SAFE_INTEGER

export class StoreLedger implements LedgerStore {
  private readonly store: DurableStore
  constructor(store: DurableStore) {
    this.store = store
  }
  append(record: LedgerRecord): Promise<void> {
    this.store.transact((v) => {
      const seq = v.count(NS)
      return { ops: [{ op: 'put', ns: NS, key: String(seq).padStart(12, '0'), exp: FOREVER, val: { seq, record } }], result: undefined }
    })
    return Promise.resolve()
  }
  replay(): Promise<LedgerRecord[]> {
    this.store.refresh()
    const rows = this.store.list(NS).map((e) => e.val as { seq: number; record: unknown })
    rows.sort((a, b) => a.seq - b.seq)
    return Promise.resolve(rows.map((r) => parseLedgerRecord(r.record)))
  }
}

/** A read-only view for `mpc-agent budget`: replay without writing (a running serve owns recovery). */
class ReadOnlyLedger implements LedgerStore {
  private readonly inner: StoreLedger
  constructor(inner: StoreLedger) {
    this.inner = inner
  }
  append(): Promise<void> {
    return Promise.resolve()
  }
  replay(): Promise<LedgerRecord[]> {
    return this.inner.replay()
  }
}

export function budgetPolicy(p: PrivacyRules): BudgetPolicy {
  return { epsilon: p.budget.epsilon, delta: p.budget.delta, windowMs: p.budget.window_days * 86_400_000 }
}

/** The ledger's key for a data source: the same identity the differencing pins use (admission.ts sourceId). */
export const ledgerSource = (sourceId: string): string => `source:${sourceId}`

/**
 * spent / reserved / remaining per (buyer, source) without recovering anything (a serve may be running): pending
 * reservations are counted from the records directly.
 */
export async function budgetStatus(store: DurableStore, policy: PrivacyRules, filter: { buyer?: string }): Promise<BudgetStatus[]> {
  const inner = new StoreLedger(store)
  const records = await inner.replay()
  const { ledger } = await PrivacyLedger.open(new ReadOnlyLedger(inner))
  const done = new Set(records.filter((r) => r.type !== 'reserve').map((r) => r.run))
  const pending = new Map<string, number>()
  for (const r of records) if (r.type === 'reserve' && !done.has(r.run)) pending.set(`${r.buyer}\u0000${r.source}`, (pending.get(`${r.buyer}\u0000${r.source}`) ?? 0) + r.rho)
  const budget = budgetPolicy(policy)
  return ledger.status(() => budget, filter).map((s) => {
    const reservedRho = pending.get(`${s.buyer}\u0000${s.source}`) ?? 0
    return { ...s, reservedRho, remainingRho: Math.max(0, s.budgetRho - s.spentRho - reservedRho), usedEpsilon: zcdpEpsilon(s.spentRho + reservedRho, budget.delta) }
  })
}

export { PrivacyLedger }
