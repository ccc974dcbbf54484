// The per-(buyer, data source) budget ledger (protocols/privacy.md §8): refuses the (k+1)-th query, releases on
// abort before the seed reveal, commits after it, reserves atomically, refreshes over a rolling window, and
// survives kill -9 between reserve and commit (a real child process on a real file).
import { afterAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rhoForEpsilonDelta } from '../../src/privacy/accounting.ts'
import { FileLedgerStore } from '../../src/privacy/ledger-file.ts'
import { LedgerError, MemoryLedgerStore, PrivacyLedger, type BudgetPolicy, type LedgerRecord, type LedgerStore } from '../../src/privacy/ledger.ts'

const DAY = 86_400_000
const budget: BudgetPolicy = { epsilon: 1, delta: 1e-6, windowMs: 30 * DAY }
const B = rhoForEpsilonDelta(budget.epsilon, budget.delta)
const dir = mkdtempSync(join(tmpdir(), 'mpc-privacy-ledger-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

const stores: [string, () => LedgerStore][] = [
  ['memory', () => new MemoryLedgerStore()],
  ['file', () => new FileLedgerStore(join(mkdtempSync(join(dir, 'f-')), 'ledger.jsonl'))]
]

describe.each(stores)('ledger over the %s store', (_name, makeStore) => {
  it('refuses the (k+1)-th query with privacy_budget, saying what remains and when it refreshes', async () => {
    const c = clock()
    const { ledger } = await PrivacyLedger.open(makeStore(), { now: c.now })
    const k = 4
    const rho = (B / k) * (1 - 1e-9)
    for (let i = 0; i < k; i++) {
      expect(await ledger.reserve({ run: `r${i}`, buyer: 'b', source: 'trips', rho, budget })).toEqual({ ok: true })
      await ledger.commit(`r${i}`)
      c.advance(DAY)
    }
    const refused = await ledger.reserve({ run: 'r4', buyer: 'b', source: 'trips', rho, budget })
    expect(refused.ok).toBe(false)
    if (refused.ok) return
    expect(refused.code).toBe('privacy_budget')
    expect(refused.remainingRho).toBeLessThan(rho)
    expect(refused.refreshAt).toBe(1_700_000_000_000 + 30 * DAY) // the first commit leaves the window
    expect(refused.message).toMatch(/remaining .* refreshes 2023-12-/)
    // another buyer, or another data source, has its own budget
    expect((await ledger.reserve({ run: 'o1', buyer: 'other', source: 'trips', rho, budget })).ok).toBe(true)
    expect((await ledger.reserve({ run: 'o2', buyer: 'b', source: 'zones', rho, budget })).ok).toBe(true)
    // rolling window: once the first commit is 30 days old, one more query fits
    c.advance(30 * DAY - 4 * DAY)
    expect((await ledger.reserve({ run: 'r5', buyer: 'b', source: 'trips', rho, budget })).ok).toBe(true)
    const [st] = ledger.status(() => budget, { buyer: 'b' }).filter((s) => s.source === 'trips')
    expect(st?.spentRho).toBeCloseTo(3 * rho, 12)
    expect(st?.reservedRho).toBeCloseTo(rho, 12)
  })

  it('releases on abort before the reveal; after the commit a release changes nothing', async () => {
    const { ledger } = await PrivacyLedger.open(makeStore())
    const rho = B * 0.6
    expect((await ledger.reserve({ run: 'a', buyer: 'b', source: 's', rho, budget })).ok).toBe(true)
    expect((await ledger.reserve({ run: 'x', buyer: 'b', source: 's', rho, budget })).ok).toBe(false) // a pending reservation counts
    expect(await ledger.release('a', 'aborted: timeout')).toBe(true)
    expect((await ledger.reserve({ run: 'c', buyer: 'b', source: 's', rho, budget })).ok).toBe(true)
    await ledger.commit('c')
    expect(await ledger.release('c', 'aborted after reveal')).toBe(false)
    expect((await ledger.reserve({ run: 'd', buyer: 'b', source: 's', rho, budget })).ok).toBe(false)
    await expect(ledger.commit('a')).rejects.toThrow(LedgerError) // a released run may not reveal
    await expect(ledger.commit('nope')).rejects.toThrow(LedgerError)
    await ledger.commit('c') // idempotent
  })

  it('reserves atomically: of 10 concurrent runs that each need a third of the budget, exactly 3 get it', async () => {
    const inner = makeStore()
    const slow: LedgerStore = {
      append: async (r: LedgerRecord) => {
        await new Promise((res) => setTimeout(res, Math.random() * 5))
        await inner.append(r)
      },
      replay: () => inner.replay()
    }
    const { ledger } = await PrivacyLedger.open(slow)
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ledger.reserve({ run: `c${i}`, buyer: 'b', source: 's', rho: (B / 3) * (1 - 1e-9), budget })))
    expect(results.filter((r) => r.ok)).toHaveLength(3)
  })

  it('recovery: an uncommitted reservation is released on reopen, a committed one stays spent', async () => {
    const store = makeStore()
    const { ledger } = await PrivacyLedger.open(store)
    await ledger.reserve({ run: 'pending', buyer: 'b', source: 's', rho: B * 0.4, budget })
    await ledger.reserve({ run: 'done', buyer: 'b', source: 's', rho: B * 0.4, budget })
    await ledger.commit('done')
    const reopened = await PrivacyLedger.open(store)
    expect(reopened.recovered).toEqual(['pending'])
    const [st] = reopened.ledger.status(() => budget)
    expect(st?.reservedRho).toBe(0)
    expect(st?.spentRho).toBeCloseTo(B * 0.4, 12)
    expect((await PrivacyLedger.open(store)).recovered).toEqual([]) // the release was made durable
  })
})

describe('file store', () => {
  it('cuts a torn last line and refuses a corrupted one in the middle', async () => {
    const path = join(dir, 'torn.jsonl')
    const { ledger } = await PrivacyLedger.open(new FileLedgerStore(path))
    await ledger.reserve({ run: 'r', buyer: 'b', source: 's', rho: 0.001, budget })
    await ledger.commit('r')
    appendFileSync(path, '{"type":"reserve","run":"t')
    const again = await PrivacyLedger.open(new FileLedgerStore(path))
    expect(again.recovered).toEqual([])
    await again.ledger.reserve({ run: 'r2', buyer: 'b', source: 's', rho: 0.001, budget })
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as LedgerRecord).type)).toEqual(['reserve', 'commit', 'reserve'])
    writeFileSync(path, '{"type":"reserve"}\n{"type":"commit","run":"r","at":1}\n')
    await expect(PrivacyLedger.open(new FileLedgerStore(path))).rejects.toThrow(LedgerError)
  })
})

describe('kill -9 between reserve and commit (child process, real file)', () => {
  const CHILD = fileURLToPath(new URL('./fixtures/ledger-child.ts', import.meta.url))
  async function runAndKill(path: string, run: string, mode: 'reserve' | 'commit'): Promise<void> {
    const child = spawn(process.execPath, [CHILD, path, run, mode], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child not ready: ${out} ${err}`)), 30_000)
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (out.includes('ready\n')) {
          clearTimeout(t)
          resolve()
        }
      })
      child.once('exit', (code) => reject(new Error(`child exited ${String(code)}: ${out} ${err}`)))
    })
    const exited = new Promise((resolve) => child.once('exit', (_c, sig) => resolve(sig)))
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
  }

  it('a reservation killed before its commit is released on restart; a commit killed after is kept', async () => {
    const path = join(dir, 'kill.jsonl')
    await runAndKill(path, 'run-reserved', 'reserve')
    const first = await PrivacyLedger.open(new FileLedgerStore(path))
    expect(first.recovered).toEqual(['run-reserved'])
    expect(first.ledger.status(() => budget)[0]).toMatchObject({ spentRho: 0, reservedRho: 0 })

    await runAndKill(path, 'run-committed', 'commit')
    const second = await PrivacyLedger.open(new FileLedgerStore(path))
    expect(second.recovered).toEqual([])
    const st = second.ledger.status(() => budget)[0]
    expect(st?.spentRho).toBeCloseTo(0.01, 12)
    expect(st?.reservedRho).toBe(0)
  })
})
