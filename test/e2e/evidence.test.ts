// Issue 16, framing: agents as separate processes through the real CLI (one deviant each, through
// the test-only entry point). A false accusation and a withheld certificate must end with no signed
// accusation of the honest provider, and `mpc-agent evidence verify` must say exactly what each
// saved bundle proves.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'
import { runCli } from '../helpers/cli.ts'
import { comparePeers } from '../../src/crypto/peer.ts'

interface AbortEntry { kind: string; data: { reason: string; accused: string | null; disputants?: string[] | null; cause?: { by: string; reason: string; accused: string | null } | null; evidence_file?: string } }

function aborts(home: string): AbortEntry[] {
  const f = join(home, 'audit.jsonl')
  if (!existsSync(f)) return []
  return readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AbortEntry).filter((e) => e.kind === 'abort')
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('framing through the real CLI (issue 16)', () => {
  let dc: DataCluster
  let ids: Record<string, string>
  beforeAll(async () => {
    dc = await makeDataCluster(3, 100)
    ids = Object.fromEntries([...dc.providers, 'city'].map((n) => [n, dc.cluster.byName(n).peerId]))
  })
  afterAll(async () => dc?.cluster.teardown())

  const verify = (file: string): Promise<{ code: number | null; stdout: string; stderr: string }> => dc.cluster.cli('city', ['evidence', 'verify', file])

  it('a provider falsely claiming key_confirmation_failed against H: no honest party signs an accusation of H; every bundle verifies as unproven', async () => {
    const [p1, p2, p3] = dc.providers as [string, string, string]
    // p3 frames the first of its co-providers in canonical order
    const h = [p1, p2].sort((a, b) => comparePeers(ids[a] as string, ids[b] as string))[0] as string
    const other = h === p1 ? p2 : p1
    const before: Record<string, number> = Object.fromEntries([h, other, 'city'].map((n) => [n, aborts(dc.cluster.byName(n).home).length]))
    await dc.cluster.serve(p1)
    await dc.cluster.serve(p2)
    await dc.cluster.serve(p3, [], { deviant: 'provider:frame-kcf' })
    const out = join(dc.dir, 'framed.json')
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out], { timeoutMs: 90_000 })
    expect(r.code, r.stderr).toBe(4)
    expect(existsSync(out)).toBe(false)
    // the buyer names the deviant as the author of the claim, and does not accuse H
    expect(r.stderr).toMatch(/claims .* is at fault \(not checked here/)
    expect(r.stderr).not.toMatch(/accused .*proven/)
    await waitFor(() => [h, other].every((n) => aborts(dc.cluster.byName(n).home).length > (before[n] as number)), 30_000, 'honest providers to record the abort')
    for (const n of [h, other, 'city']) {
      for (const e of aborts(dc.cluster.byName(n).home).slice(before[n] ?? 0)) expect(e.data.accused, `${n} signs no accusation`).toBe(null)
    }
    // the buyer's bundle beside the output: authentic, and its accusation of H rests on p3's word (exit 8)
    const v = await verify(`${out}.evidence.json`)
    expect(v.code, v.stderr).toBe(8)
    expect(v.stdout).toMatch(/unproven/)
    expect(v.stdout).toContain(ids[p3])
    // an honest provider's bundle (named in its audit log) says the same
    const file = aborts(dc.cluster.byName(h).home).at(-1)?.data.evidence_file as string
    expect((await verify(file)).code).toBe(8)
    for (const p of dc.providers) await dc.cluster.stop(p)
  }, 180_000)

  it('the buyer withholds H\'s certificate: the others\' aborts name the buyer–H dispute, never H; evidence verify reports a dispute (exit 0)', async () => {
    const h = [...dc.providers].sort((a, b) => comparePeers(ids[a] as string, ids[b] as string))[0] as string
    // negotiate_s above H's 30 s wait for a late certificate, so H's signed notice arrives before anyone's timeout
    const q = join(dc.dir, 'slow.yaml')
    writeFileSync(q, readFileSync(dc.queryFile, 'utf8').replace(/timeouts:.*/, 'timeouts: { negotiate_s: 45, compute_s: 10, confirm_s: 5 }'))
    // only this run's entries count: the previous test's deviant signed an accusation in its own log
    const before = Object.fromEntries([...dc.providers, 'city'].map((n) => [n, aborts(dc.cluster.byName(n).home).length]))
    for (const p of dc.providers) await dc.cluster.serve(p)
    const out = join(dc.dir, 'withheld.json')
    const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', out], { deviant: 'buyer:withhold-cert', timeoutMs: 120_000 })
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/no_certificate|dispute between/)
    expect(r.stderr).toContain(ids[h])
    const others = dc.providers.filter((n) => n !== h)
    await waitFor(() => others.every((n) => aborts(dc.cluster.byName(n).home).length > (before[n] as number)), 60_000, 'the other providers to record the abort')
    for (const n of [...others, 'city']) {
      const mine = aborts(dc.cluster.byName(n).home).slice(before[n] as number)
      expect(mine.length, `${n} recorded this run's abort`).toBeGreaterThan(0)
      for (const e of mine) expect(e.data.accused, `${n} accuses nobody`).toBe(null)
      const last = mine.at(-1) as AbortEntry
      // the buyer–H dispute: recorded directly (no_certificate) or as the cause of a relay
      const named = last.data.reason === 'no_certificate' ? last.data.disputants : (last.data.cause as { disputants?: string[] } | null)?.disputants
      if (last.data.reason === 'no_certificate' || last.data.cause?.reason === 'no_certificate') expect(named).toEqual([ids.city, ids[h]])
      else expect(last.data.cause?.accused ?? null).toBe(null) // at most a silence, never an accusation
    }
    const v = await verify(`${out}.evidence.json`)
    expect(v.code, v.stdout + v.stderr).toBe(0)
    expect(v.stdout).toMatch(/dispute between/)
    expect(v.stdout).toMatch(/does not prove/)
    for (const p of dc.providers) await dc.cluster.stop(p)
    // a tampered bundle is refused (exit 9)
    const bundle = JSON.parse(readFileSync(`${out}.evidence.json`, 'utf8')) as { abort: { detail: string } }
    bundle.abort.detail += ' (edited)'
    const tampered = join(dc.dir, 'tampered.json')
    writeFileSync(tampered, JSON.stringify(bundle))
    expect((await verify(tampered)).code).toBe(9)
    expect(readdirSync(join(dc.cluster.byName(others[0] as string).home, 'evidence')).length).toBeGreaterThan(0)
  }, 240_000)
})
