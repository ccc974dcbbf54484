import { describe, it, expect } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { acquireLock, writeFileAtomic } from '../../src/agent/files.ts'
import { JsonLog } from '../../src/agent/log.ts'
import { BusyError } from '../../src/agent/errors.ts'

const dir = mkdtempSync(join(tmpdir(), 'mpc-files-'))

describe('locks', () => {
  it('a second holder is refused with BusyError while the first is alive', () => {
    const target = join(dir, 'out.json')
    const a = acquireLock(target)
    expect(() => acquireLock(target)).toThrow(BusyError)
    a.release()
    const b = acquireLock(target)
    b.release()
    expect(existsSync(`${target}.lock`)).toBe(false)
  })

  it('a stale lock (dead owner) is taken over', () => {
    const target = join(dir, 'stale.json')
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: Number(dead), since: 'then' }))
    const l = acquireLock(target)
    expect(JSON.parse(readFileSync(`${target}.lock`, 'utf8')).pid).toBe(process.pid)
    l.release()
  })
})

describe('atomic writes', () => {
  it('an empty lock is someone between open and write: held while young, stale once old', () => {
    const target = join(mkdtempSync(join(tmpdir(), 'mpc-lock-')), 'out.json')
    writeFileSync(`${target}.lock`, '')
    expect(() => acquireLock(target)).toThrow(BusyError)
    const old = new Date(Date.now() - 10_000)
    utimesSync(`${target}.lock`, old, old)
    const l = acquireLock(target)
    expect(JSON.parse(readFileSync(`${target}.lock`, 'utf8')).pid).toBe(process.pid)
    l.release()
  })

  it('waits for a lock released within waitMs', () => {
    const target = join(mkdtempSync(join(tmpdir(), 'mpc-lock-')), 'out.json')
    const first = acquireLock(target)
    setTimeout(() => first.release(), 1)
    // synchronous wait: the release above cannot run meanwhile, so this must time out as busy
    expect(() => acquireLock(target, { waitMs: 50 })).toThrow(BusyError)
    first.release()
    acquireLock(target, { waitMs: 50 }).release()
  })

  it('replaces the file whole and leaves no temporary behind', () => {
    const p = join(dir, 'atomic.txt')
    writeFileAtomic(p, 'one')
    writeFileAtomic(p, 'two')
    expect(readFileSync(p, 'utf8')).toBe('two')
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([])
  })
})

describe('json log', () => {
  it('writes JSON lines and rotates by size', () => {
    const log = new JsonLog(join(dir, 'logs'), { maxBytes: 400, keep: 2 })
    for (let i = 0; i < 20; i++) log.write('info', 'event', { i })
    const files = readdirSync(join(dir, 'logs')).sort()
    expect(files).toEqual(['agent.log', 'agent.log.1', 'agent.log.2'])
    for (const f of files) {
      for (const line of readFileSync(join(dir, 'logs', f), 'utf8').trim().split('\n')) {
        expect(JSON.parse(line)).toMatchObject({ level: 'info', msg: 'event' })
      }
    }
  })
})
