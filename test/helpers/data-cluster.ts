// A buyer and N providers, each provider with its own small trips CSV and a policy, served as
// separate processes through the real CLI; plus the plaintext answer computed independently here.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { makeCluster, type Cluster } from './agents.ts'

export interface Trip {
  zone: number
  hour: number
  fare: number
}

/** Deterministic pseudo-random trips (mulberry32). */
export function trips(seed: number, n: number): Trip[] {
  let a = seed >>> 0
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return Array.from({ length: n }, () => ({ zone: 1 + Math.floor(rnd() * 6), hour: Math.floor(rnd() * 24), fare: Math.round(rnd() * 6000) / 100 }))
}

export function tripsCsv(ts: Trip[]): string {
  return 'zone,pickup_datetime,fare,license\n' + ts.map((t) => `${t.zone},2024-03-0${1 + (t.zone % 5)} ${String(t.hour).padStart(2, '0')}:15:00,${t.fare},HV000${t.zone % 3}`).join('\n') + '\n'
}

export const QUERY = (providers: string[], extra = ''): string => `id: zones-by-hour
title: Pickups and mean fare per zone and hour
dataset: trips
timezone: UTC
group_by:
  - { name: zone, kind: int_range, column: zone, min: 1, max: 5 }
  - { name: hour, kind: hour_of_day, column: pickup_datetime }
aggregates:
  - { name: pickups, kind: count }
  - { name: fare, kind: sum, column: fare, scale: 100, clip: [0, 50] }
max_rows_per_provider: 1000000
participants:
  buyer: city
  providers: [${providers.join(', ')}]
timeouts: { negotiate_s: 10, compute_s: 20, confirm_s: 10 }
${extra}`

export function policyYaml(others: string[]): string {
  return `approval: auto
buyers: [city]
datasets:
  trips:
    filter_columns: [zone, pickup_datetime, fare]
    group_by_columns: [zone, pickup_datetime]
    aggregate_columns: [fare]
    deny_columns: [license]
min_providers: 3
trusted_co_providers: { peers: [${others.join(', ')}], min: ${Math.min(2, others.length)} }
max_cells: 5000000
max_runs_per_buyer_per_day: 100
differencing_window_s: 0
allowed_outputs: [buyer]
`
}

/** Expected totals per (zone 1..5, hour) cell: count and Σ round(clip(fare,0,50)·100) / 100. */
export function expected(all: Trip[][]): Map<string, { pickups: number; fare: number }> {
  const m = new Map<string, { pickups: number; fare: number }>()
  for (const ts of all) {
    for (const t of ts) {
      if (t.zone > 5) continue // outside the domain: dropped
      const k = `${t.zone}|${String(t.hour).padStart(2, '0')}`
      const e = m.get(k) ?? { pickups: 0, fare: 0 }
      e.pickups++
      e.fare += Math.round(Math.min(50, Math.max(0, t.fare)) * 100)
      m.set(k, e)
    }
  }
  for (const e of m.values()) e.fare /= 100
  return m
}

export interface DataCluster {
  cluster: Cluster
  providers: string[]
  data: Trip[][]
  queryFile: string
  dir: string
}

/** `hosts`: run every agent in its own network namespace (hosts[0] the buyer), else all on 127.0.0.1. */
export async function makeDataCluster(n: number, rows = 400, hosts?: Array<{ ns: string; ip: string }>): Promise<DataCluster> {
  const providers = Array.from({ length: n }, (_, i) => `p${i + 1}`)
  const netns = (i: number): { netns?: { ns: string; ip: string } } => (hosts?.[i] ? { netns: hosts[i] } : {})
  const cluster = await makeCluster([{ name: 'city', role: 'buyer', ...netns(0) }, ...providers.map((name, i) => ({ name, role: 'provider' as const, ...netns(i + 1) }))])
  const data: Trip[][] = []
  providers.forEach((name, i) => {
    const a = cluster.byName(name)
    const ts = trips(1000 + i, rows)
    data.push(ts)
    writeFileSync(join(a.home, 'trips.csv'), tripsCsv(ts))
    const cfgPath = join(a.home, 'config.yaml')
    const cfg = parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>
    cfg.datasets = { trips: { path: 'trips.csv', format: 'csv', columns: { zone: 'INTEGER', pickup_datetime: 'TIMESTAMP', fare: 'DOUBLE', license: 'VARCHAR' } } }
    writeFileSync(cfgPath, stringify(cfg))
    writeFileSync(join(a.home, 'policy.yaml'), policyYaml(providers.filter((p) => p !== name)))
  })
  const queryFile = join(cluster.dir, 'query.yaml')
  writeFileSync(queryFile, QUERY(providers))
  return { cluster, providers, data, queryFile, dir: cluster.dir }
}

export interface ResultDoc {
  session: string
  dims: Array<{ name: string; labels: string[] }>
  cells: Array<{ key: string[]; values: Record<string, number | null> }>
}

export function readResult(path: string): ResultDoc {
  return JSON.parse(readFileSync(path, 'utf8')) as ResultDoc
}
