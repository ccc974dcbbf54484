// The directory's state (protocols/directory.md §4): the latest entry per peer ID and the highest
// seq ever accepted from it, in a DurableStore journal (fsync'ed before a PUBLISH is answered;
// compaction by atomic rename), so a restart keeps both. No libp2p here: the server passes in the
// Noise-authenticated remote peer ID.
import { DurableStore } from '../agent/store.ts'
import { ENTRY_LIMITS, EntryCheckError, verifyPeerEntryV2, type SignedPeerEntryV2 } from '../agent/peer-entry-v2.ts'
import { DEFAULT_MAX_PEERS, DEFAULT_MIN_PUBLISH_INTERVAL_MS, PAGE_SIZE } from './constants.ts'
import type { DirectoryErrorCode, PublishChange } from './messages.ts'

const NS_ENTRY = 'dir.entry'
const NS_SEQ = 'dir.seq'

/**
 * How long the seq of a peer is remembered after its last PUBLISH: longer than any entry signed
 * before that PUBLISH can stay valid (its exp is at most signing time + maxTtl, + skew at the
 * checker; + skew for the signer's clock), so an older entry can never be replayed after the newer
 * one expired and was dropped.
 */
export const SEQ_RETENTION_MS = (ENTRY_LIMITS.maxTtlS + 2 * ENTRY_LIMITS.skewS) * 1000

export type PublishOutcome =
  | { ok: true; change: PublishChange; entry: SignedPeerEntryV2 }
  | { ok: false; code: DirectoryErrorCode; detail: string }

export interface RegistryOptions {
  maxPeers?: number
  minPublishIntervalMs?: number
  now?: () => number
}

interface SeqRecord { seq: number; sig: string }

export class DirectoryRegistry {
  private readonly store: DurableStore
  private readonly now: () => number
  private readonly maxPeers: number
  private readonly minInterval: number
  private readonly lastPublish = new Map<string, number>()

  constructor(statePath: string, opts: RegistryOptions = {}) {
    this.now = opts.now ?? Date.now
    this.store = DurableStore.open(statePath, { now: this.now })
    this.maxPeers = opts.maxPeers ?? DEFAULT_MAX_PEERS
    this.minInterval = opts.minPublishIntervalMs ?? DEFAULT_MIN_PUBLISH_INTERVAL_MS
  }

  /**
   * A PUBLISH from `remote` (the Noise-authenticated peer ID of the connection). Checks, in order
   * (directory.md §4.1): the entry is a valid v2 entry now; it is the remote's own; the remote is
   * not publishing too often; its seq is above every seq accepted from that peer; the directory has
   * room. Only then is it stored, durably, before the answer.
   */
  publish(raw: unknown, remote: string): PublishOutcome {
    const now = this.now()
    let entry: SignedPeerEntryV2
    try {
      entry = verifyPeerEntryV2(raw, 'entry', now)
    } catch (e) {
      if (e instanceof EntryCheckError) return { ok: false, code: 'bad_entry', detail: e.message }
      throw e
    }
    if (entry.peerId !== remote) return { ok: false, code: 'not_yours', detail: `the entry is ${entry.peerId}'s, but this connection is ${remote}'s: a peer publishes only its own entry` }
    const last = this.lastPublish.get(remote)
    if (last !== undefined && now - last < this.minInterval) return { ok: false, code: 'rate', detail: `at most one publish per ${this.minInterval} ms: try again shortly` }
    const outcome = this.store.transact<PublishOutcome>((view) => {
      const rec = view.get(NS_SEQ, remote)?.val as SeqRecord | undefined
      if (rec && entry.seq < rec.seq) return { ops: [], result: { ok: false, code: 'stale', detail: `seq ${entry.seq} is older than the ${rec.seq} this directory holds for ${remote}: sign a fresh entry` } }
      if (rec && entry.seq === rec.seq) {
        // a retried PUBLISH of the same entry is answered as such; another entry under the same seq is not
        if (rec.sig === entry.sig && view.get(NS_ENTRY, remote)) return { ops: [], result: { ok: true, change: 'unchanged', entry } }
        return { ops: [], result: { ok: false, code: 'stale', detail: `seq ${entry.seq} was already used for another entry of ${remote}: sign a fresh entry` } }
      }
      if (!rec && view.count(NS_SEQ) >= this.maxPeers) return { ops: [], result: { ok: false, code: 'full', detail: `this directory holds its maximum of ${this.maxPeers} peers` } }
      return {
        ops: [
          { op: 'put', ns: NS_ENTRY, key: remote, exp: (entry.exp + ENTRY_LIMITS.skewS) * 1000, val: entry },
          { op: 'put', ns: NS_SEQ, key: remote, exp: now + SEQ_RETENTION_MS, val: { seq: entry.seq, sig: entry.sig } satisfies SeqRecord }
        ],
        result: { ok: true, change: view.get(NS_ENTRY, remote) ? 'replaced' : 'added', entry }
      }
    })
    if (outcome.ok && outcome.change !== 'unchanged') this.lastPublish.set(remote, now)
    if (this.lastPublish.size > 2 * this.maxPeers) this.pruneRate(now)
    return outcome
  }

  /** One page of live entries in peer-ID order, strictly after `after`. */
  list(after?: string): { entries: SignedPeerEntryV2[]; more: boolean } {
    const all = this.store.list(NS_ENTRY)
      .map((e) => e.val as SignedPeerEntryV2)
      .filter((e) => after === undefined || e.peerId > after)
      .sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
    return { entries: all.slice(0, PAGE_SIZE), more: all.length > PAGE_SIZE }
  }

  /** Live entries (expired ones are dropped by the store). */
  get size(): number {
    return this.store.count(NS_ENTRY)
  }

  private pruneRate(now: number): void {
    for (const [k, t] of this.lastPublish) if (now - t >= this.minInterval) this.lastPublish.delete(k)
  }
}
