// Differencing pins in the durable store (namespace "pin"; negotiation.md §6.2 and §6.3). The rule
// itself is pure (src/policy/differencing.ts); here it is applied atomically: the check and the
// write are one store transaction, fsync'ed before ACCEPT is sent, so of two concurrent proposals
// over different provider sets only one can pass.
import { existsSync, realpathSync } from 'node:fs'
import type { DatasetSource } from '../data/source.ts'
import { differencingConflict, providerSet, type Pin } from '../policy/differencing.ts'
import type { DurableStore, StoreOp } from './store.ts'

const NS = 'pin'
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

export class PinStore {
  private readonly store: DurableStore
  constructor(store: DurableStore) {
    this.store = store
  }

  /** Live pins, including changes made by other processes (`mpc-agent pins clear`). */
  list(): Pin[] {
    this.store.refresh()
    return this.store.list(NS).map((e) => e.val as Pin)
  }

  /**
   * Check and pin in one durable step: refused (with the earlier pin) when any group is pinned to a
   * different provider set; otherwise every group is pinned to this set until `until`.
   */
  reserve(r: { groups: string[]; providers: string[]; proposal: string; buyer: string; dataset: string; until: number }): { ok: true } | { ok: false; conflict: Pin } {
    return this.store.transact<{ ok: true } | { ok: false; conflict: Pin }>((v) => {
      const now = v.now
      const pins = v.list(NS).map((e) => e.val as Pin)
      const conflict = differencingConflict(pins, r.groups, r.providers, now)
      if (conflict) return { ops: [], result: { ok: false as const, conflict } }
      const ops: StoreOp[] = r.groups.map((group) => {
        const pin: Pin = { group, providers: providerSet(r.providers), proposal: r.proposal, buyer: r.buyer, dataset: r.dataset, at: now, until: r.until }
        return { op: 'put', ns: NS, key: keyOf(r.proposal, group), exp: r.until, val: pin }
      })
      return { ops, result: { ok: true as const } }
    })
  }

  /**
   * Drop the pins of a proposal that never got a certificate: no data was read for it, so nothing
   * was released (negotiation.md §6.2). Never called once a certificate arrived.
   */
  release(proposal: string): void {
    this.store.transact((v) => ({ ops: v.list(NS).filter((e) => (e.val as Pin).proposal === proposal).map((e) => ({ op: 'del' as const, ns: NS, key: e.key })), result: undefined }))
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
