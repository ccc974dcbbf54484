// The nonce store remembers answered proposals across restarts, prunes expired ones, stays bounded.
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileNonceStore, NONCE_MARGIN_MS } from '../../src/agent/nonce-store.ts'

const storePath = (): string => join(mkdtempSync(join(tmpdir(), 'mpc-nonce-')), 'nonces.json')

describe('nonce store', () => {
  it('survives a restart', () => {
    const path = storePath()
    const s = new FileNonceStore(path)
    expect(s.has('aa')).toBe(false)
    s.add('aa', Date.now() + 60_000)
    expect(s.has('aa')).toBe(true)
    const again = new FileNonceStore(path)
    expect(again.has('aa')).toBe(true)
    expect(again.has('bb')).toBe(false)
  })

  it('keeps a nonce for a day past its expiry, then prunes it', () => {
    const path = storePath()
    const s = new FileNonceStore(path)
    s.add('recent', Date.now() - NONCE_MARGIN_MS + 60_000) // expired, but within the margin
    s.add('old', Date.now() - NONCE_MARGIN_MS - 60_000) // beyond the margin: pruned on the next write
    s.add('fresh', Date.now() + 60_000)
    const again = new FileNonceStore(path)
    expect(again.has('recent')).toBe(true)
    expect(again.has('old')).toBe(false)
    expect(again.has('fresh')).toBe(true)
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')) as object).sort()).toEqual(['fresh', 'recent'])
  })

  it('is bounded: refuses new nonces when full of unexpired ones, accepts again after pruning', () => {
    const path = storePath()
    const s = new FileNonceStore(path, { max: 3 })
    for (const n of ['a', 'b', 'c']) s.add(n, Date.now() + 60_000)
    expect(() => s.add('d', Date.now() + 60_000)).toThrow(/full/)
    expect(s.has('d')).toBe(false)
    // stored expiries far in the past are pruned on load
    const o = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>
    o.a = 0
    writeFileSync(path, JSON.stringify(o))
    const again = new FileNonceStore(path, { max: 3 })
    expect(again.size).toBe(2)
    again.add('d', Date.now() + 60_000)
    expect(again.has('d')).toBe(true)
  })

  it('refuses to start on a corrupt store (a lost store would let replays through)', () => {
    const path = storePath()
    writeFileSync(path, '{"aa": 1')
    expect(() => new FileNonceStore(path)).toThrow(expect.objectContaining({ name: 'NonceStoreError' }))
    writeFileSync(path, '[1,2]')
    expect(() => new FileNonceStore(path)).toThrow(/corrupt/)
  })
})
