// The durable store (src/agent/store.ts): crash-safe replay, a torn last line tolerated and cut off,
// a damaged journal refused, compaction of expired entries, and atomic reservation — within a
// process and across real processes racing for the same key.
import { describe, expect, it } from 'vitest'
import fs, { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DurableStore, StoreError } from '../../src/agent/store.ts'
import { AdmissionStore } from '../../src/agent/admission.ts'

/**
 * Run `fn` with node:fs's writeSync and fsyncSync recorded (the ESM bindings the store imported are
 * re-synced to the wrappers): the calls in order, each with the path of its descriptor.
 */
function recordingFs<T>(fn: () => T): { result: T; calls: Array<{ call: 'write' | 'fsync'; path: string }> } {
  const calls: Array<{ call: 'write' | 'fsync'; path: string }> = []
  const { writeSync, fsyncSync } = fs
  const pathOf = (fd: number): string => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      return `fd ${fd}`
    }
  }
  fs.writeSync = ((fd: number, ...rest: unknown[]) => {
    calls.push({ call: 'write', path: pathOf(fd) })
    return (writeSync as (...a: unknown[]) => number)(fd, ...rest)
  }) as typeof fs.writeSync
  fs.fsyncSync = (fd: number) => {
    calls.push({ call: 'fsync', path: pathOf(fd) })
    fsyncSync(fd)
  }
  syncBuiltinESMExports()
  try {
    return { result: fn(), calls }
  } finally {
    fs.writeSync = writeSync
    fs.fsyncSync = fsyncSync
    syncBuiltinESMExports()
  }
}

const journal = (): string => join(mkdtempSync(join(tmpdir(), 'mpc-store-')), 'state.jsonl')
const lines = (p: string): string[] => readFileSync(p, 'utf8').split('\n').filter(Boolean)

describe('durable store', () => {
  it('a change is written and fsync\'ed before the call that made it returns (pins and run counts before ACCEPT)', () => {
    const p = journal()
    const s = DurableStore.open(p)
    const admissions = new AdmissionStore(s)
    const { result, calls } = recordingFs(() => admissions.admit({
      proposal: 'ab'.repeat(32), buyer: 'buyer', providers: ['x', 'y', 'z'], dataset: 'trips', maxRuns: 10,
      pin: { groups: ['group:default'], until: Date.now() + 60_000 }
    }))
    expect(result).toEqual({ ok: true })
    const onJournal = calls.filter((c) => c.path === p).map((c) => c.call)
    expect(onJournal.length).toBeGreaterThan(0)
    // the last thing done to the journal before admit returned is an fsync, after its last write
    expect(onJournal.at(-1)).toBe('fsync')
    expect(onJournal.lastIndexOf('fsync')).toBeGreaterThan(onJournal.lastIndexOf('write'))
    // and the pin and the run count are in what was written
    expect(readFileSync(p, 'utf8')).toContain('group:default')
    // control: the recorder sees a plain write that is not fsync'ed as such
    const { calls: plain } = recordingFs(() => { const fd = fs.openSync(`${p}.x`, 'w'); fs.writeSync(fd, 'x'); fs.closeSync(fd) })
    expect(plain.filter((c) => c.path === `${p}.x`).map((c) => c.call)).toEqual(['write'])
  })

  it('replays every change after a restart (puts, overwrites, deletes)', () => {
    const p = journal()
    const s = DurableStore.open(p)
    s.put('pin', 'a', Date.now() + 60_000, { providers: ['x', 'y'] })
    s.put('pin', 'b', Date.now() + 60_000, 1)
    s.put('pin', 'a', Date.now() + 60_000, { providers: ['z'] })
    s.delete('pin', 'b')
    s.put('nonce', 'n1', Date.now() + 60_000)
    const again = DurableStore.open(p)
    expect(again.get('pin', 'a')?.val).toEqual({ providers: ['z'] })
    expect(again.get('pin', 'b')).toBeUndefined()
    expect(again.list('pin')).toHaveLength(1)
    expect(again.count('nonce')).toBe(1)
  })

  it('a torn last line (crash mid-write) is dropped and cut off; the next append starts a clean line', () => {
    const p = journal()
    const s = DurableStore.open(p)
    s.put('nonce', 'kept', Date.now() + 60_000)
    appendFileSync(p, '{"t":1,"ops":[{"op":"put","ns":"nonce","key":"torn","ex') // no newline: never acknowledged
    const again = DurableStore.open(p)
    expect(again.get('nonce', 'kept')).toBeDefined()
    expect(again.get('nonce', 'torn')).toBeUndefined()
    again.put('nonce', 'after', Date.now() + 60_000)
    for (const l of lines(p)) expect(() => JSON.parse(l)).not.toThrow()
    const third = DurableStore.open(p)
    expect(third.get('nonce', 'after')).toBeDefined()
  })

  it('a damaged line before the end is refused: a lost nonce or pin would let an attack through', () => {
    const p = journal()
    const s = DurableStore.open(p)
    s.put('nonce', 'a', Date.now() + 60_000)
    s.put('nonce', 'b', Date.now() + 60_000)
    const ls = lines(p)
    ls[1] = ls[1]?.replace('"ops"', '"opz"') ?? ''
    writeFileSync(p, ls.join('\n') + '\n')
    expect(() => DurableStore.open(p)).toThrow(StoreError)
    writeFileSync(p, 'not json\n' + ls.slice(1).join('\n') + '\n')
    expect(() => DurableStore.open(p)).toThrow(/corrupt/)
  })

  it('compaction drops expired and deleted entries and keeps the live ones', () => {
    const p = journal()
    let now = 1_000_000
    const s = DurableStore.open(p, { now: () => now })
    for (let i = 0; i < 50; i++) s.put('nonce', `old${i}`, now + 1000)
    s.put('nonce', 'live', now + 10_000)
    s.put('pin', 'gone', now + 10_000)
    s.delete('pin', 'gone')
    expect(s.journalLines).toBe(53)
    now += 5000 // the 50 old ones expire
    expect(s.count('nonce')).toBe(1)
    s.compact()
    expect(s.journalLines).toBe(1)
    expect(lines(p)).toHaveLength(2) // header + the live entry
    const again = DurableStore.open(p, { now: () => now })
    expect(again.get('nonce', 'live')).toBeDefined()
    expect(again.count('nonce')).toBe(1)
  })

  it('compacts by itself once the journal is much longer than what is live', () => {
    const p = journal()
    const s = DurableStore.open(p)
    for (let i = 0; i < 1100; i++) s.put('rate', 'same-key', Date.now() + 60_000, i)
    expect(s.journalLines).toBeLessThan(1100)
    expect(DurableStore.open(p).get('rate', 'same-key')?.val).toBe(1099)
  })

  it('a transaction sees what another handle appended, and decides on it atomically', () => {
    const p = journal()
    const a = DurableStore.open(p)
    const b = DurableStore.open(p)
    const reserve = (s: DurableStore, who: string): boolean => s.transact((v) => {
      if (v.get('pin', 'g')) return { ops: [], result: false }
      return { ops: [{ op: 'put', ns: 'pin', key: 'g', exp: Date.now() + 60_000, val: who }], result: true }
    })
    expect(reserve(a, 'a')).toBe(true)
    expect(reserve(b, 'b')).toBe(false) // b had not read a's line before its transaction
    expect(b.get('pin', 'g')?.val).toBe('a')
    // a compaction by one handle is picked up by the other (the file was replaced)
    a.compact()
    b.delete('pin', 'g')
    expect(reserve(a, 'a2')).toBe(true)
    expect(DurableStore.open(p).get('pin', 'g')?.val).toBe('a2')
  })

  it('processes racing for one key: exactly one reservation wins', async () => {
    const p = journal()
    DurableStore.open(p)
    const store = fileURLToPath(new URL('../../src/agent/store.ts', import.meta.url))
    const script = `
      const { DurableStore } = await import(${JSON.stringify(store)})
      const s = DurableStore.open(${JSON.stringify(p)})
      const won = s.transact((v) => v.get('pin', 'g') ? { ops: [], result: false } : { ops: [{ op: 'put', ns: 'pin', key: 'g', exp: Date.now() + 60000, val: process.pid }], result: true })
      process.stdout.write(won ? 'won' : 'lost')`
    const run = (): Promise<string> => new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      c.stdout.on('data', (d: Buffer) => (out += d.toString()))
      c.stderr.on('data', (d: Buffer) => (err += d.toString()))
      c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))))
    })
    const results = await Promise.all(Array.from({ length: 6 }, run))
    expect(results.filter((r) => r === 'won')).toHaveLength(1)
    expect(results.filter((r) => r === 'lost')).toHaveLength(5)
    expect(lines(p).filter((l) => l.includes('"pin"'))).toHaveLength(1)
  }, 30_000)
})
