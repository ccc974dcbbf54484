// Admission state in the durable store (negotiation.md §6.2, §6.3): differencing pins (namespace
// "pin") and the per-buyer run counts behind max_runs_per_buyer_per_day (namespace "rate"). The rules
// are pure (src/policy/*); here they are applied atomically: the checks and the writes are one store
// transaction, fsync'ed before ACCEPT is sent, so of two concurrent proposals over different provider
// sets only one can pass, and concurrent proposals cannot overrun the rate limit.
import { existsSync, realpathSync } from 'node:fs'
import type { DatasetSource } from '../data/source.ts'
import { differencingConflict, providerSet, type Pin } from '../policy/differencing.ts'
import type { DurableStore, StoreOp } from './store.ts'

const NS = 'pin'
const RATE = 'rate'
/** A run counts against max_runs_per_buyer_per_day for 24 h from its acceptance. */
export const RATE_WINDOW_MS = 86_400_000
const keyOf = (proposal: string, group: string): string => `${proposal}/${group}`

/** The identity of a dataset's data: format, real path (symlinks resolved) and table. */
export function sourceId(src: DatasetSource): string {
  let path = src.path
  try {
    if (existsSync(path)) path = realpathSync(path)
  } catch {
    // keep the configured path
  }
  return `${src.format}:${path}${src.table ? `#${src.table}` : ''}`
}

export interface PinSelector {
  /** A proposal digest or a prefix of it (at least 8 hex digits). */
  proposal?: string
  /** A pin group exactly as listed, e.g. "group:default". */
  group?: string
  all?: boolean
}

export type Admission = { ok: true } | { ok: false; conflict: Pin } | { ok: false; runs: number }

export class AdmissionStore {
  private readonly store: DurableStore
  constructor(store: DurableStore) {
    this.store = store
  }

  /** Live pins, including changes made by other processes (`mpc-agent pins clear`). */
  list(): Pin[] {
    this.store.refresh()
    return this.store.list(NS).map((e) => e.val as Pin)
  }

  /** Runs accepted for `buyer` in the last 24 h (and not dropped for want of a certificate). */
  runsBy(buyer: string): number {
    this.store.refresh()
    return this.store.list(RATE).filter((e) => (e.val as { buyer?: string }).buyer === buyer).length
  }

  /**
   * Check and record in one durable step. Refused with the earlier pin when `pin` is given and any of
   * its groups is pinned to a different provider set; refused with the count when the buyer already
   * has `maxRuns` runs in the last 24 h. Otherwise every group is pinned to this set until
   * `pin.until` and the run is counted.
   */
  admit(r: {
    proposal: string; buyer: string; providers: string[]; dataset: string; maxRuns: number
    pin?: { groups: string[]; until: number }
  }): Admission {
    return this.store.transact<Admission>((v) => {
      const now = v.now
      const runs = v.list(RATE).filter((e) => (e.val as { buyer?: string }).buyer === r.buyer).length
      if (runs >= r.maxRuns) return { ops: [], result: { ok: false, runs } }
      const ops: StoreOp[] = [{ op: 'put', ns: RATE, key: r.proposal, exp: now + RATE_WINDOW_MS, val: { buyer: r.buyer } }]
      if (r.pin) {
        const conflict = differencingConflict(v.list(NS).map((e) => e.val as Pin), r.pin.groups, r.providers, now)
        if (conflict) return { ops: [], result: { ok: false, conflict } }
        const until = r.pin.until
        ops.push(...r.pin.groups.map((group): StoreOp => {
          const pin: Pin = { group, providers: providerSet(r.providers), proposal: r.proposal, buyer: r.buyer, dataset: r.dataset, at: now, until }
          return { op: 'put', ns: NS, key: keyOf(r.proposal, group), exp: until, val: pin }
        }))
      }
      return { ops, result: { ok: true } }
    })
  }

  /**
   * Drop the pins and the run count of a proposal that never got a certificate: no data was read
   * for it, so nothing was released (negotiation.md §6.2). Never called once a certificate arrived.
   */
  release(proposal: string): void {
    this.store.transact((v) => ({
      ops: [
        ...v.list(NS).filter((e) => (e.val as Pin).proposal === proposal).map((e): StoreOp => ({ op: 'del', ns: NS, key: e.key })),
        ...(v.get(RATE, proposal) ? [{ op: 'del', ns: RATE, key: proposal } satisfies StoreOp] : [])
      ],
      result: undefined
    }))
  }

  /** Remove the selected pins (the operator's `mpc-agent pins clear`); returns what was removed. */
  clear(sel: PinSelector): Pin[] {
    return this.store.transact((v) => {
      const hit = v.list(NS).filter((e) => {
        const p = e.val as Pin
        if (sel.all) return true
        if (sel.proposal && !p.proposal.startsWith(sel.proposal.toLowerCase())) return false
        if (sel.group && p.group !== sel.group) return false
        return Boolean(sel.proposal || sel.group)
      })
      return { ops: hit.map((e) => ({ op: 'del' as const, ns: NS, key: e.key })), result: hit.map((e) => e.val as Pin) }
    })
  }
}
