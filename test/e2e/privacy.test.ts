// Issue 15 through the real CLI, every agent a separate OS process on 127.0.0.1: a differentially private query
// over 3 providers returns noisy totals whose 95% intervals cover the exact totals as often as they should (a
// binomial check at 1e-6 that fails with the noise off or doubled), every provider keeps the buyer's budget in
// its durable ledger (`mpc-agent budget`), and a buyer at its budget is refused by every provider (privacy_budget).
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { appendFileSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster, type Trip } from '../helpers/data-cluster.ts'
import { coverageCheck } from '../../src/privacy/intervals.ts'
import { rhoForEpsilonDelta, zcdpEpsilon } from '../../src/privacy/accounting.ts'

const EDGES = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60.01]
const DP_QUERY = (providers: string[]): string => `id: zones-hours-fares-dp
title: Pickups per zone, hour and fare band, with differential privacy
dataset: trips
timezone: UTC
group_by:
  - { name: zone, kind: int_range, column: zone, min: 1, max: 6 }
  - { name: hour, kind: hour_of_day, column: pickup_datetime }
  - { name: band, kind: bins, column: fare, edges: [${EDGES.join(', ')}] }
aggregates:
  - { name: pickups, kind: count }
max_rows_per_provider: 1000000
participants:
  buyer: city
  providers: [${providers.join(', ')}]
timeouts: { negotiate_s: 20, compute_s: 30, confirm_s: 20 }
privacy: { epsilon: 1.0, delta: 1.0e-9, unit: row, suppress_below: 3 }
`
// a budget that holds two queries of (1, 1e-9) and not three (zCDP composes rho)
const BUDGET_EPS = zcdpEpsilon(2.5 * rhoForEpsilonDelta(1, 1e-9), 1e-6)

function exactCounts(all: Trip[][]): Map<string, number> {
  const m = new Map<string, number>()
  for (const ts of all) for (const t of ts) {
    const b = EDGES.findIndex((e, i) => i < EDGES.length - 1 && t.fare >= e && t.fare < (EDGES[i + 1] as number))
    if (b < 0) continue
    const k = `${t.zone}|${String(t.hour).padStart(2, '0')}|${b}`
    m.set(k, (m.get(k) ?? 0) + 1)
  }
  return m
}

interface NoisyDoc {
  cells: Array<{ key: string[]; values: Record<string, number | null>; interval?: Record<string, [number, number]>; suppressed?: boolean }>
  dims: Array<{ name: string; labels: string[] }>
  privacy?: { epsilon: number; delta: number; mechanism: string; aggregates: Record<string, { std: number; half_width_95: number; coverage: number }> }
}

describe('differential privacy through the real CLI: 1 buyer + 3 providers', () => {
  let dc: DataCluster
  let q: string
  beforeAll(async () => {
    dc = await makeDataCluster(3, 600)
    for (const p of dc.providers) {
      const home = dc.cluster.byName(p).home
      // a second dataset over a copy of the file: another data source, with its own budget (kill -9 test)
      copyFileSync(join(home, 'trips.csv'), join(home, 'trips2.csv'))
      const cfgPath = join(home, 'config.yaml')
      const cfg = parse(readFileSync(cfgPath, 'utf8')) as { datasets: Record<string, { path: string }> }
      cfg.datasets.trips2 = { ...(cfg.datasets.trips as { path: string }), path: 'trips2.csv' }
      writeFileSync(cfgPath, stringify(cfg))
      const pol = join(home, 'policy.yaml')
      const text = readFileSync(pol, 'utf8').replace('group_by_columns: [zone, pickup_datetime]', 'group_by_columns: [zone, pickup_datetime, fare]')
      const rules = text.slice(text.indexOf('  trips:\n') + '  trips:\n'.length, text.indexOf('min_providers'))
      writeFileSync(pol, text.replace('min_providers', `  trips2:\n${rules}min_providers`))
      appendFileSync(pol, `privacy:
  required: true
  max_epsilon_per_query: 1.0
  budget: { epsilon: ${BUDGET_EPS}, delta: 1.0e-6, window_days: 30 }
  unit: { trips: row, trips2: row }
`)
      await dc.cluster.serve(p)
    }
    q = join(dc.dir, 'dp.yaml')
    writeFileSync(q, DP_QUERY(dc.providers))
  })
  afterAll(async () => dc?.cluster.teardown())

  it('noisy totals whose 95% intervals cover the exact totals as often as the binomial check allows', async () => {
    const out = join(dc.dir, 'dp.json')
    const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', out, '--timeout', '90'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/NOISY/)
    const doc = JSON.parse(readFileSync(out, 'utf8')) as NoisyDoc
    expect(doc.privacy?.mechanism).toBe('discrete_gaussian')
    expect(doc.privacy?.epsilon).toBe(1)
    const cells = 6 * 24 * 12
    expect(doc.cells).toHaveLength(cells)
    const exact = exactCounts(dc.data)
    let hits = 0
    let differs = 0
    for (const c of doc.cells) {
      const e = exact.get(c.key.join('|')) ?? 0
      const [lo, hi] = c.interval?.pickups as [number, number]
      if (e >= lo && e <= hi) hits++
      if (c.values.pickups !== e) differs++
    }
    const coverage = doc.privacy?.aggregates.pickups?.coverage as number
    expect(coverageCheck(hits, cells, coverage).ok, `${hits}/${cells} at coverage ${coverage}`).toBe(true)
    // the check can fail: with the noise off every cell would be inside, which the binomial bound rejects
    expect(coverageCheck(cells, cells, coverage).ok).toBe(false)
    expect(differs).toBeGreaterThan(cells / 2) // noisy, not exact
    const prov = JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8')) as { privacy?: { epsilon: number } }
    expect(prov.privacy?.epsilon).toBe(1)
    // each provider committed the run's cost durably and shows it
    for (const p of dc.providers) {
      const b = await dc.cluster.cli(p, ['--json', 'budget', '--buyer', 'city'])
      expect(b.code, b.stderr).toBe(0)
      const rows = JSON.parse(b.stdout) as Array<{ spent_rho: number; reserved_rho: number }>
      expect(rows).toHaveLength(1)
      expect(rows[0]?.spent_rho).toBeCloseTo(rhoForEpsilonDelta(1, 1e-9), 9)
      expect(rows[0]?.reserved_rho).toBe(0)
      const ops = readFileSync(join(dc.cluster.byName(p).home, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; data: { op?: string } })
        .filter((e) => e.kind === 'privacy_ledger').map((e) => e.data.op)
      expect(ops).toEqual(['reserve', 'commit'])
    }
  })

  const ledgerOps = (p: string): Array<string | undefined> => (existsSync(join(dc.cluster.byName(p).home, 'audit.jsonl')) ? readFileSync(join(dc.cluster.byName(p).home, 'audit.jsonl'), 'utf8') : '').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string; data: { op?: string } }).filter((e) => e.kind === 'privacy_ledger').map((e) => e.data.op)
  async function settled(want: number): Promise<Array<Array<string | undefined>>> {
    const deadline = Date.now() + 60_000
    for (;;) {
      const ops = dc.providers.map(ledgerOps)
      if (ops.every((o) => o.length >= want) || Date.now() > deadline) return ops
      await new Promise((res) => setTimeout(res, 250))
    }
  }

  it('serve releases the reservation when a run ends before the reveal, and keeps it committed after the reveal', async () => {
    // the buyer withholds the certificate from one provider: no provider reveals, every reservation is released
    const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', join(dc.dir, 'withheld.json'), '--timeout', '90'], { deviant: 'buyer:withhold-cert', timeoutMs: 120_000 })
    expect(r.code).not.toBe(0)
    const ops = await settled(4)
    for (const o of ops) expect(o).toEqual(['reserve', 'commit', 'reserve', 'release'])
    const b = await dc.cluster.cli(dc.providers[0] as string, ['--json', 'budget'])
    const rows = JSON.parse(b.stdout) as Array<{ spent_rho: number; reserved_rho: number }>
    expect(rows[0]?.spent_rho).toBeCloseTo(rhoForEpsilonDelta(1, 1e-9), 9)
    expect(rows[0]?.reserved_rho).toBe(0)
    // the buyer aborts after every REVEAL: the result may exist, so the cost stays spent
    const a = await dc.cluster.cli('city', ['query', 'run', q, '--out', join(dc.dir, 'after.json'), '--timeout', '90'], { deviant: 'buyer:abort-after-reveal', timeoutMs: 120_000 })
    expect(a.code).not.toBe(0)
    const ops2 = await settled(6)
    for (const o of ops2) expect(o).toEqual(['reserve', 'commit', 'reserve', 'release', 'reserve', 'commit'])
  })

  it('a buyer at its budget is refused by every provider with privacy_budget; an exact query is refused (privacy_required)', async () => {
    const out3 = join(dc.dir, 'dp3.json')
    const r3 = await dc.cluster.cli('city', ['query', 'run', q, '--out', out3, '--timeout', '90'])
    expect(r3.code).toBe(3)
    for (const p of dc.providers) expect(r3.stderr).toContain(p)
    expect(r3.stderr.match(/privacy budget exhausted/g)?.length).toBe(3)
    expect(existsSync(out3)).toBe(false)
    // the refused run reserved nothing
    const b = await dc.cluster.cli(dc.providers[0] as string, ['--json', 'budget'])
    const rows = JSON.parse(b.stdout) as Array<{ spent_rho: number; reserved_rho: number }>
    expect(rows[0]?.spent_rho).toBeCloseTo(2 * rhoForEpsilonDelta(1, 1e-9), 9)
    expect(rows[0]?.reserved_rho).toBe(0)
    const exact = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', join(dc.dir, 'exact.json'), '--timeout', '60'])
    expect(exact.code).toBe(3)
    expect(exact.stderr).toMatch(/privacy section/)
  })

  it('kill -9 between reserve and commit: the restarted serve releases the reservation (it never revealed its seed)', async () => {
    const victim = dc.providers[0] as string
    await dc.cluster.stop(victim)
    await dc.cluster.serve(victim, [], { deviant: 'provider:silent-reveal' }) // stalls right before onReveal
    const q2 = join(dc.dir, 'dp-trips2.yaml')
    writeFileSync(q2, DP_QUERY(dc.providers).replace('dataset: trips', 'dataset: trips2').replace('id: zones-hours-fares-dp', 'id: zones-hours-fares-dp2'))
    const before = ledgerOps(victim).length
    const auditOf = (p: string): string => (existsSync(join(dc.cluster.byName(p).home, 'audit.jsonl')) ? readFileSync(join(dc.cluster.byName(p).home, 'audit.jsonl'), 'utf8') : '')
    const reveals = (p: string): number => auditOf(p).split('"kind":"reveal"').length
    const revealsBefore = new Map(dc.providers.map((p) => [p, reveals(p)]))
    const run = dc.cluster.cli('city', ['query', 'run', q2, '--out', join(dc.dir, 'killed.json'), '--timeout', '120'], { timeoutMs: 150_000 })
    // the others reveal once INCLUSION arrived: the victim is then stalled before its commit
    const others = dc.providers.filter((p) => p !== victim)
    const deadline = Date.now() + 60_000
    while (!others.every((p) => reveals(p) > (revealsBefore.get(p) as number)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    await new Promise((r) => setTimeout(r, 500))
    expect(ledgerOps(victim).slice(before)).toEqual(['reserve'])
    await dc.cluster.stop(victim, 'SIGKILL')
    await dc.cluster.serve(victim) // recovery at start: no commit record for the run, so it is released
    expect(ledgerOps(victim).slice(before)).toEqual(['reserve', 'release'])
    const audit = readFileSync(join(dc.cluster.byName(victim).home, 'audit.jsonl'), 'utf8')
    expect(audit).toMatch(/recovered after a restart/)
    const b = await dc.cluster.cli(victim, ['--json', 'budget'])
    const rows = JSON.parse(b.stdout) as Array<{ source: string; spent_rho: number; reserved_rho: number }>
    const t2 = rows.find((r) => r.source.includes('trips2'))
    expect(t2?.spent_rho).toBe(0)
    expect(t2?.reserved_rho).toBe(0)
    expect((await run).code).not.toBe(0)
  })
})
