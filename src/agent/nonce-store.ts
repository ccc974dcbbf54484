// Proposal nonces a provider has answered (negotiation.md §5), kept in the agent's durable store
// (store.ts, namespace "nonce") so a replay after a restart is refused too. Each add is one fsync'ed
// journal line, not a rewrite of every nonce. Entries are kept until their deadline plus a day
// (clock skew and late retries), then compacted away; the store is bounded so a flood of proposals
// cannot grow it forever.
import { existsSync, readFileSync, renameSync } from 'node:fs'
import type { NonceStore } from '../protocol/negotiation.ts'
import type { DurableStore, StoreOp } from './store.ts'

/** Kept after expiry: a proposal past its deadline is refused anyway; a day covers skewed clocks. */
export const NONCE_MARGIN_MS = 86_400_000
/** Upper bound on remembered nonces; beyond it new proposals are refused. */
export const MAX_NONCES = 100_000
const NS = 'nonce'

export class NonceStoreError extends Error {
  override name = 'NonceStoreError'
}

export class FileNonceStore implements NonceStore {
  private readonly store: DurableStore
  private readonly max: number

  /**
   * `legacyPath`: the nonces.json of earlier versions (one JSON object rewritten whole on every add);
   * its unexpired nonces are moved into the store once and the file is renamed to `*.migrated`.
   */
  constructor(store: DurableStore, opts: { max?: number; legacyPath?: string } = {}) {
    this.store = store
    this.max = opts.max ?? MAX_NONCES
    if (opts.legacyPath && existsSync(opts.legacyPath)) migrate(store, opts.legacyPath)
  }

  has(nonceHex: string): boolean {
    return this.store.get(NS, nonceHex) !== undefined
  }

  /** Remember `nonceHex` until `expiresAt` (ms since epoch) + NONCE_MARGIN_MS; on disk before returning. */
  add(nonceHex: string, expiresAt: number): void {
    if (typeof nonceHex !== 'string' || nonceHex.length === 0) throw new TypeError('expected a non-empty nonce string')
    if (!Number.isFinite(expiresAt)) throw new TypeError(`expected a finite expiry time, got ${expiresAt}`)
    this.store.transact((v) => {
      const old = v.get(NS, nonceHex)
      if (!old && v.count(NS) >= this.max) {
        throw new NonceStoreError(`nonce store full (${this.max} unexpired proposals): wait for deadlines to pass or lower proposal rates`)
      }
      const exp = Math.max(expiresAt + NONCE_MARGIN_MS, old?.exp ?? -Infinity)
      return { ops: [{ op: 'put', ns: NS, key: nonceHex, exp }], result: undefined }
    })
  }

  get size(): number {
    return this.store.count(NS)
  }
}

function migrate(store: DurableStore, path: string): void {
  let o: unknown
  try {
    o = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    o = null
  }
  // a corrupt store would let replays through: refuse to start instead
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new NonceStoreError(`nonce store ${path} is corrupt: move it aside only if you know no proposal is being replayed`)
  }
  const now = store.now
  const ops: StoreOp[] = []
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number' && Number.isFinite(v) && v + NONCE_MARGIN_MS >= now) ops.push({ op: 'put', ns: NS, key: k, exp: v + NONCE_MARGIN_MS })
  }
  store.transact(() => ({ ops, result: undefined }))
  renameSync(path, `${path}.migrated`)
}
