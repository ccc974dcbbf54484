// Issue #8 crash matrix, 1 buyer + 4 providers, every agent a real process: kill -9 a provider and the
// buyer at each phase (negotiation, cross-check, confirmation; streaming is in crash.test.ts). A
// deviation from the test-only entry point holds the victim in the phase so the kill lands there.
// Survivors end within their timeouts with the documented exit code, the dead peer named; no result
// file; the victim is gone; the next run with every party succeeds.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'
import { spawnCli, collect, isAlive } from '../helpers/cli.ts'

const FAST = 'timeouts: { negotiate_s: 4, compute_s: 5, confirm_s: 4 }'

const aborts = (home: string): number => existsSync(join(home, 'audit.jsonl'))
  ? readFileSync(join(home, 'audit.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"abort"')).length : 0

describe('crash matrix (kill -9 per role and phase)', () => {
  let dc: DataCluster
  let fast: string
  beforeAll(async () => {
    dc = await makeDataCluster(4, 60)
    fast = join(dc.dir, 'fast.yaml')
    writeFileSync(fast, readFileSync(dc.queryFile, 'utf8').replace(/timeouts:.*/, FAST))
  }, 120_000)
  afterAll(async () => dc?.cluster.teardown())

  async function serveAll(victim?: { name: string; deviant?: string; manual?: boolean }): Promise<void> {
    for (const p of dc.providers) {
      const home = dc.cluster.byName(p).home
      const pol = readFileSync(join(home, 'policy.yaml'), 'utf8').replace('approval: manual', 'approval: auto')
      writeFileSync(join(home, 'policy.yaml'), victim?.name === p && victim.manual ? pol.replace('approval: auto', 'approval: manual') : pol)
      await dc.cluster.serve(p, [], victim?.name === p && victim.deviant ? { deviant: victim.deviant } : {})
    }
  }
  async function stopAll(): Promise<void> {
    for (const p of dc.providers) await dc.cluster.stop(p)
  }
  async function nextRunSucceeds(): Promise<void> {
    await stopAll()
    await serveAll()
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', join(dc.dir, `ok-${Date.now()}.json`)])
    expect(r.code, r.stderr).toBe(0)
    await stopAll()
  }
  function waitEvent(pid: number, stdout: () => string, pred: (e: Record<string, unknown>) => boolean, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t0 = Date.now()
      const tick = (): void => {
        const hit = stdout().split('\n').filter(Boolean).some((l) => {
          try {
            return pred(JSON.parse(l) as Record<string, unknown>)
          } catch {
            return false
          }
        })
        if (hit) return resolve()
        if (Date.now() - t0 > ms || !isAlive(pid)) return reject(new Error(`event not seen: ${stdout().slice(-400)}`))
        setTimeout(tick, 50)
      }
      tick()
    })
  }
  function spawnBuyer(deviant?: string): { pid: number; out: string; stdout: () => string; done: Promise<{ code: number | null; stderr: string; signal: NodeJS.Signals | null }>; kill(): void } {
    const out = join(dc.dir, `run-${Date.now()}.json`)
    const p = spawnCli(['--home', dc.cluster.byName('city').home, '--json', 'query', 'run', fast, '--out', out], { deviant })
    let buf = ''
    p.stdout?.on('data', (d: Buffer) => (buf += d.toString()))
    const done = collect(p, 90_000)
    return { pid: p.pid as number, out, stdout: () => buf, done, kill: () => p.kill('SIGKILL') }
  }

  const provider = [
    ['negotiation', { manual: true }, (e: Record<string, unknown>) => e.type === 'decision' && e.decision === 'accept'],
    ['cross-check', { deviant: 'provider:silent-xcheck' }, (e: Record<string, unknown>) => e.type === 'phase' && e.phase === 'negotiate' && e.state === 'done'],
    ['confirmation', { deviant: 'provider:silent-reveal' }, (e: Record<string, unknown>) => e.type === 'phase' && e.phase === 'confirm' && e.state === 'start']
  ] as const

  for (const [phase, how, when] of provider) {
    it(`a provider killed during ${phase}: the buyer aborts naming it (exit 5, or 4 when a co-provider's abort arrives first), nothing written`, async () => {
      await serveAll({ name: 'p2', ...how })
      const b = spawnBuyer()
      await waitEvent(b.pid, b.stdout, when)
      const victim = dc.cluster.byName('p2')
      victim.proc?.kill('SIGKILL')
      const r = await b.done
      expect([4, 5], r.stderr).toContain(r.code)
      expect(r.stderr).toContain(victim.peerId)
      expect(existsSync(b.out)).toBe(false)
      for (const p of ['p1', 'p3', 'p4']) expect(dc.cluster.byName(p).proc?.exitCode).toBe(null)
      await nextRunSucceeds()
    }, 120_000)
  }

  const buyer = [
    ['negotiation', { providerManual: true }, (e: Record<string, unknown>) => e.type === 'peer' && e.state === 'connected'],
    ['confirmation', { deviant: 'buyer:silent-inclusion' }, (e: Record<string, unknown>) => e.type === 'phase' && e.phase === 'compute' && e.state === 'done']
  ] as const

  for (const [phase, how, when] of buyer) {
    it(`the buyer killed during ${phase}: every provider that took part records an abort and keeps serving`, async () => {
      await serveAll('providerManual' in how ? { name: 'p1', manual: true } : undefined)
      const before = dc.providers.map((p) => aborts(dc.cluster.byName(p).home))
      const b = spawnBuyer('deviant' in how ? how.deviant : undefined)
      await waitEvent(b.pid, b.stdout, when)
      await new Promise((res) => setTimeout(res, 300))
      b.kill()
      const r = await b.done
      expect(r.signal).toBe('SIGKILL')
      expect(isAlive(b.pid)).toBe(false)
      expect(existsSync(b.out)).toBe(false)
      const deadline = Date.now() + 30_000
      const took = 'providerManual' in how ? ['p2', 'p3', 'p4'] : dc.providers
      for (;;) {
        const after = dc.providers.map((p) => aborts(dc.cluster.byName(p).home))
        if (took.every((p) => (after[dc.providers.indexOf(p)] as number) > (before[dc.providers.indexOf(p)] as number))) break
        if (Date.now() > deadline) throw new Error(`providers did not record the abort: ${before} → ${after}`)
        await new Promise((res) => setTimeout(res, 300))
      }
      for (const p of dc.providers) expect(dc.cluster.byName(p).proc?.exitCode).toBe(null)
      await nextRunSucceeds()
    }, 120_000)
  }
})
