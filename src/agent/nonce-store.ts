// Proposal nonces a provider has answered (negotiation.md §5), persisted atomically so a replay
// after a restart is refused too. Entries are kept until their deadline plus a day (clock skew and
// late retries), then pruned; the store is bounded so a flood of proposals cannot grow it forever.
import { existsSync, readFileSync } from 'node:fs'
import { writeFileAtomic } from './files.ts'
import type { NonceStore } from '../protocol/negotiation.ts'

/** Kept after expiry: a proposal past its deadline is refused anyway; a day covers skewed clocks. */
export const NONCE_MARGIN_MS = 86_400_000
/** Upper bound on remembered nonces (~10 MB of JSON); beyond it new proposals are refused. */
export const MAX_NONCES = 100_000

export class NonceStoreError extends Error {
  override name = 'NonceStoreError'
}

export class FileNonceStore implements NonceStore {
  private readonly path: string
  private readonly map = new Map<string, number>()
  private readonly max: number

  constructor(path: string, opts: { max?: number } = {}) {
    this.path = path
    this.max = opts.max ?? MAX_NONCES
    if (!existsSync(path)) return
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
    for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && Number.isFinite(v)) this.map.set(k, v)
    this.prune(Date.now())
  }

  has(nonceHex: string): boolean {
    return this.map.has(nonceHex)
  }

  /** Remember `nonceHex` until `expiresAt` (ms since epoch) + NONCE_MARGIN_MS; written before returning. */
  add(nonceHex: string, expiresAt: number): void {
    if (typeof nonceHex !== 'string' || nonceHex.length === 0) throw new TypeError('expected a non-empty nonce string')
    if (!Number.isFinite(expiresAt)) throw new TypeError(`expected a finite expiry time, got ${expiresAt}`)
    this.prune(Date.now())
    if (!this.map.has(nonceHex) && this.map.size >= this.max) {
      throw new NonceStoreError(`nonce store full (${this.max} unexpired proposals): wait for deadlines to pass or lower proposal rates`)
    }
    this.map.set(nonceHex, Math.max(expiresAt, this.map.get(nonceHex) ?? -Infinity))
    writeFileAtomic(this.path, JSON.stringify(Object.fromEntries(this.map)), 0o600)
  }

  get size(): number {
    return this.map.size
  }

  private prune(now: number): void {
    for (const [k, v] of this.map) if (v + NONCE_MARGIN_MS < now) this.map.delete(k)
  }
}
