// policy.yaml: a provider's rules (negotiation.md §6; README "Policy"). Parsed strictly; names are
// resolved to peer IDs through the provider's own config, so rules cannot silently miss a peer.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { DEFAULT_PIN_GROUP } from './differencing.ts'
import type { DpUnit } from '../privacy/accounting.ts'
import { yamlErrorLine } from '../util/yaml-error.ts'

export class PolicyError extends Error {
  override name = 'PolicyError'
}

export interface DatasetRules {
  filter_columns: string[]
  group_by_columns: string[]
  aggregate_columns: string[]
  /** Never in filter or group_by: columns constant within a firm would return its exact data. */
  deny_columns: string[]
  /** sum/mean over these columns must clip within [min, max]. */
  required_clip: Record<string, [number, number]>
  /** Differencing pins (negotiation.md §6.2): datasets in one group share one pinned provider set. */
  pin_group: string
  /**
   * The lowest max_rows_per_provider a query on this dataset may set (reason `row_bound` below it).
   * An operator's constant, never computed from the data: set it above the row count of any cell
   * this dataset could fill, so the per-cell clamp (negotiation.md §3.7) never binds on real data.
   */
  max_rows_floor: number
}

/** Default floor of max_rows_per_provider when a dataset's policy sets none. */
export const DEFAULT_MAX_ROWS_FLOOR = 1_000_000

export interface Policy {
  approval: 'auto' | 'manual'
  buyers: string[]
  datasets: Record<string, DatasetRules>
  min_providers: number
  trusted_co_providers: { peers: string[]; min: number }
  max_cells: number
  max_runs_per_buyer_per_day: number
  differencing_window_s: number
  /**
   * all_buyers (default): one pinned provider set per data source whoever asks. per_buyer: one per
   * (buyer, source), which assumes buyers do not collude (SECURITY.md).
   */
  differencing_scope: 'all_buyers' | 'per_buyer'
  /** Who may receive results besides the buyer (peer IDs). */
  allowed_outputs: string[]
  /** Differential privacy (protocols/privacy.md); absent: exact queries only, no privacy section checks. */
  privacy?: PrivacyRules
}

export interface PrivacyRules {
  /** refuse a query without a privacy section (privacy_required) */
  required: boolean
  max_epsilon_per_query: number
  /** per buyer and data source, rolling */
  budget: { epsilon: number; delta: number; window_days: number }
  /** the privacy unit per dataset name */
  unit: Record<string, DpUnit>
  /** t; undefined = N − 2 */
  assume_dishonest_providers?: number
}

type Obj = Record<string, unknown>

export function parsePolicyText(text: string, source: string, resolve: (nameOrId: string) => string | undefined): Policy {
  const fail = (path: string, msg: string): never => {
    throw new PolicyError(`${source}: ${path}: ${msg}`)
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (e) {
    return fail('(root)', `not valid YAML: ${yamlErrorLine(e)}`)
  }
  const obj = (v: unknown, path: string, keys: string[]): Obj => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'expected a mapping')
    for (const k of Object.keys(v as Obj)) if (!keys.includes(k)) fail(path, `unknown key "${k}" (allowed: ${keys.join(', ')})`)
    return v as Obj
  }
  const strs = (v: unknown, path: string): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(path, 'expected a list of strings')
    return v as string[]
  }
  const int = (v: unknown, path: string, dflt: number, min: number): number => {
    if (v === undefined) return dflt
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(path, `expected an integer ≥ ${min}`)
    return v as number
  }
  const peers = (v: unknown, path: string): string[] => strs(v, path).map((n, i) => {
    if (n === 'buyer' && path === 'allowed_outputs') return 'buyer'
    const id = resolve(n)
    if (!id) fail(`${path}[${i}]`, `"${n}" is neither a configured peer nor a peer ID`)
    return id as string
  })
  const o = obj(doc ?? {}, '(root)', ['approval', 'buyers', 'datasets', 'min_providers', 'trusted_co_providers', 'max_cells', 'max_runs_per_buyer_per_day', 'differencing_window_s', 'differencing_scope', 'allowed_outputs', 'privacy'])
  const approval = (o.approval ?? 'auto') as Policy['approval']
  if (approval !== 'auto' && approval !== 'manual') fail('approval', 'must be auto or manual')
  const datasets: Record<string, DatasetRules> = {}
  for (const [name, raw] of Object.entries(obj(o.datasets ?? {}, 'datasets', Object.keys((o.datasets ?? {}) as Obj)))) {
    const d = obj(raw, `datasets.${name}`, ['filter_columns', 'group_by_columns', 'aggregate_columns', 'deny_columns', 'required_clip', 'pin_group', 'max_rows_floor'])
    if (d.pin_group !== undefined && (typeof d.pin_group !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(d.pin_group))) {
      fail(`datasets.${name}.pin_group`, 'expected a name of letters, digits, _ . - (at most 64)')
    }
    const clips: Record<string, [number, number]> = {}
    for (const [col, c] of Object.entries(obj(d.required_clip ?? {}, `datasets.${name}.required_clip`, Object.keys((d.required_clip ?? {}) as Obj)))) {
      if (!Array.isArray(c) || c.length !== 2 || c.some((x) => typeof x !== 'number' || !Number.isFinite(x)) || (c[0] as number) > (c[1] as number)) {
        fail(`datasets.${name}.required_clip.${col}`, 'expected [min, max]')
      }
      clips[col] = c as [number, number]
    }
    datasets[name] = {
      filter_columns: strs(d.filter_columns, `datasets.${name}.filter_columns`),
      group_by_columns: strs(d.group_by_columns, `datasets.${name}.group_by_columns`),
      aggregate_columns: strs(d.aggregate_columns, `datasets.${name}.aggregate_columns`),
      deny_columns: strs(d.deny_columns, `datasets.${name}.deny_columns`),
      required_clip: clips,
      pin_group: (d.pin_group as string | undefined) ?? DEFAULT_PIN_GROUP,
      max_rows_floor: int(d.max_rows_floor, `datasets.${name}.max_rows_floor`, DEFAULT_MAX_ROWS_FLOOR, 1)
    }
  }
  const scope = o.differencing_scope ?? 'all_buyers'
  if (scope !== 'all_buyers' && scope !== 'per_buyer') fail('differencing_scope', 'must be all_buyers or per_buyer')
  const min_providers = int(o.min_providers, 'min_providers', 3, 0)
  if (min_providers < 3) fail('min_providers', 'must be at least 3: with two providers each learns the other\'s data from the total')
  const t = obj(o.trusted_co_providers ?? {}, 'trusted_co_providers', ['peers', 'min'])
  const trustedPeers = peers(t.peers, 'trusted_co_providers.peers')
  const trustedMin = int(t.min, 'trusted_co_providers.min', 0, 0)
  if (trustedMin > trustedPeers.length) fail('trusted_co_providers.min', `${trustedMin} exceeds the ${trustedPeers.length} peers listed, so no query could ever be accepted`)
  const num = (v: unknown, path: string, lo: number, hi: number): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > lo && v <= hi)) fail(path, `expected a number in (${lo}, ${hi}]`)
    return v as number
  }
  let privacy: PrivacyRules | undefined
  if (o.privacy !== undefined) {
    const p = obj(o.privacy, 'privacy', ['required', 'max_epsilon_per_query', 'budget', 'unit', 'assume_dishonest_providers'])
    if (p.required !== undefined && typeof p.required !== 'boolean') fail('privacy.required', 'expected true or false')
    if (p.budget === undefined) fail('privacy.budget', 'missing: set { epsilon, delta, window_days }')
    const b = obj(p.budget, 'privacy.budget', ['epsilon', 'delta', 'window_days'])
    const budget = { epsilon: num(b.epsilon, 'privacy.budget.epsilon', 0, 1000), delta: num(b.delta, 'privacy.budget.delta', 0, 1e-3), window_days: int(b.window_days, 'privacy.budget.window_days', 30, 1) }
    if (budget.delta >= 1e-3) fail('privacy.budget.delta', 'expected below 0.001')
    const unit: Record<string, DpUnit> = {}
    for (const [ds, u] of Object.entries(obj(p.unit ?? {}, 'privacy.unit', Object.keys((p.unit ?? {}) as Obj)))) {
      if (u === 'row') {
        unit[ds] = { kind: 'row' }
        continue
      }
      const uo = obj(u, `privacy.unit.${ds}`, ['column', 'max_cells', 'max_rows_per_cell'])
      if (typeof uo.column !== 'string' || uo.column.length === 0 || uo.column.includes('"')) fail(`privacy.unit.${ds}.column`, 'expected a column name')
      if (uo.max_cells === undefined) fail(`privacy.unit.${ds}.max_cells`, 'missing')
      unit[ds] = { kind: 'column', column: uo.column as string, maxCells: int(uo.max_cells, `privacy.unit.${ds}.max_cells`, 1, 1), maxRowsPerCell: int(uo.max_rows_per_cell, `privacy.unit.${ds}.max_rows_per_cell`, 1, 1) }
    }
    const mepq = p.max_epsilon_per_query === undefined ? budget.epsilon : num(p.max_epsilon_per_query, 'privacy.max_epsilon_per_query', 0, 1000)
    privacy = {
      required: (p.required as boolean | undefined) ?? true,
      max_epsilon_per_query: mepq,
      budget,
      unit,
      ...(p.assume_dishonest_providers === undefined ? {} : { assume_dishonest_providers: int(p.assume_dishonest_providers, 'privacy.assume_dishonest_providers', 0, 0) })
    }
  }
  return {
    ...(privacy ? { privacy } : {}),
    approval,
    buyers: peers(o.buyers, 'buyers'),
    datasets,
    min_providers,
    trusted_co_providers: { peers: trustedPeers, min: trustedMin },
    max_cells: int(o.max_cells, 'max_cells', 1_000_000, 1),
    max_runs_per_buyer_per_day: int(o.max_runs_per_buyer_per_day, 'max_runs_per_buyer_per_day', 100, 0),
    differencing_window_s: int(o.differencing_window_s, 'differencing_window_s', 86_400, 0),
    differencing_scope: scope as Policy['differencing_scope'],
    allowed_outputs: peers(o.allowed_outputs ?? ['buyer'], 'allowed_outputs')
  }
}

export function loadPolicy(path: string, resolve: (nameOrId: string) => string | undefined): Policy {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new PolicyError(`no policy at ${path}: write one (see README "Policy"; examples/ride-sharing/policy.yaml is a template)`)
  }
  return parsePolicyText(text, path, resolve)
}
