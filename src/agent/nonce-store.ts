// Proposal nonces a provider has answered (negotiation.md §5), persisted atomically so a replay
// after a restart is refused too. Entries are kept until their deadline plus a day, then pruned.
import { existsSync, readFileSync } from 'node:fs'
import { writeFileAtomic } from './files.ts'
import type { NonceStore } from '../protocol/negotiation.ts'

const MARGIN_MS = 86_400_000
const MAX_ENTRIES = 100_000

export class FileNonceStore implements NonceStore {
  private readonly path: string
  private readonly map = new Map<string, number>()

  constructor(path: string) {
    this.path = path
    if (existsSync(path)) {
      try {
        const o = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>
        for (const [k, v] of Object.entries(o)) if (typeof v === 'number') this.map.set(k, v)
      } catch {
        // a corrupt store would let replays through: refuse to start instead
        throw new Error(`nonce store ${path} is corrupt: move it aside only if you know no proposal is being replayed`)
      }
    }
  }

  has(nonce: string): boolean {
    return this.map.has(nonce)
  }

  add(nonce: string, expiresAt: number): void {
    const now = Date.now()
    for (const [k, v] of this.map) if (v + MARGIN_MS < now) this.map.delete(k)
    if (this.map.size >= MAX_ENTRIES) throw new Error('nonce store full: too many proposals in flight')
    this.map.set(nonce, expiresAt)
    writeFileAtomic(this.path, JSON.stringify(Object.fromEntries(this.map)), 0o600)
  }
}
