// The nonce store remembers answered proposals across restarts, prunes expired ones, stays bounded,
// and moves the nonces.json of earlier versions into the durable store once.
import { describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileNonceStore, NONCE_MARGIN_MS } from '../../src/agent/nonce-store.ts'
import { DurableStore } from '../../src/agent/store.ts'

const home = (): string => mkdtempSync(join(tmpdir(), 'mpc-nonce-'))
const open = (dir: string, max?: number): FileNonceStore => new FileNonceStore(DurableStore.open(join(dir, 'state.jsonl')), { max, legacyPath: join(dir, 'nonces.json') })

describe('nonce store', () => {
  it('survives a restart', () => {
    const dir = home()
    const s = open(dir)
    expect(s.has('aa')).toBe(false)
    s.add('aa', Date.now() + 60_000)
    expect(s.has('aa')).toBe(true)
    const again = open(dir)
    expect(again.has('aa')).toBe(true)
    expect(again.has('bb')).toBe(false)
  })

  it('appends one line per nonce instead of rewriting the store', () => {
    const dir = home()
    const s = open(dir)
    const text = (): string => readFileSync(join(dir, 'state.jsonl'), 'utf8')
    s.add('a1', Date.now() + 60_000)
    const one = text()
    s.add('a2', Date.now() + 60_000)
    const two = text()
    expect(two.startsWith(one)).toBe(true)
    expect(two.slice(one.length).split('\n').filter(Boolean)).toHaveLength(1)
    expect(two.slice(one.length)).toContain('"a2"')
  })

  it('keeps a nonce for a day past its expiry, then forgets it', () => {
    const dir = home()
    const s = open(dir)
    s.add('recent', Date.now() - NONCE_MARGIN_MS + 60_000) // expired, but within the margin
    s.add('old', Date.now() - NONCE_MARGIN_MS - 60_000) // beyond the margin
    s.add('fresh', Date.now() + 60_000)
    expect(s.has('old')).toBe(false)
    const again = open(dir)
    expect(again.has('recent')).toBe(true)
    expect(again.has('old')).toBe(false)
    expect(again.has('fresh')).toBe(true)
    // compacted away on open
    expect(readFileSync(join(dir, 'state.jsonl'), 'utf8')).not.toContain('"old"')
  })

  it('is bounded: refuses new nonces when full of unexpired ones', () => {
    const dir = home()
    const s = open(dir, 3)
    for (const n of ['a', 'b', 'c']) s.add(n, Date.now() + 60_000)
    expect(() => s.add('d', Date.now() + 60_000)).toThrow(/full/)
    expect(s.has('d')).toBe(false)
    s.add('a', Date.now() + 120_000) // a known nonce may be extended
    expect(s.size).toBe(3)
  })

  it('migrates a legacy nonces.json once (expired entries dropped) and refuses a corrupt one', () => {
    const dir = home()
    writeFileSync(join(dir, 'nonces.json'), JSON.stringify({ kept: Date.now() + 60_000, gone: 0 }))
    const s = open(dir)
    expect(s.has('kept')).toBe(true)
    expect(s.has('gone')).toBe(false)
    expect(existsSync(join(dir, 'nonces.json'))).toBe(false)
    expect(existsSync(join(dir, 'nonces.json.migrated'))).toBe(true)
    expect(open(dir).has('kept')).toBe(true)
    const bad = home()
    writeFileSync(join(bad, 'nonces.json'), '{"aa": 1')
    expect(() => open(bad)).toThrow(expect.objectContaining({ name: 'NonceStoreError' }))
    writeFileSync(join(bad, 'nonces.json'), '[1,2]')
    expect(() => open(bad)).toThrow(/corrupt/)
  })
})
