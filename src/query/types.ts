// The query model: what a buyer proposes and every provider signs. Normative text in
// protocols/negotiation.md §3. These are the *validated, canonical* forms (after parsing
// a YAML/JSON query file and resolving participant names to peer IDs).

export type Literal = string | number | boolean | null

/** A value reference in filters and group_by: a column, optionally through a time function. */
export interface ColumnRef {
  column: string
  /** Time functions on a TIMESTAMP column, evaluated in the query's timezone (see Query.timezone). */
  fn?: 'hour' | 'dow' | 'date'
}

export type FilterExpr =
  | { op: 'and' | 'or'; args: FilterExpr[] }
  | { op: 'not'; arg: FilterExpr }
  | { op: 'cmp'; cmp: '=' | '!=' | '<' | '<=' | '>' | '>='; ref: ColumnRef; value: Literal }
  | { op: 'in'; ref: ColumnRef; values: Literal[]; negated: boolean }
  | { op: 'between'; ref: ColumnRef; low: Literal; high: Literal; negated: boolean }
  | { op: 'is_null'; ref: ColumnRef; negated: boolean }

/** Public domain of one group_by dimension; fixes the cells and their order for everyone. */
export type Domain =
  /** Integers min..max inclusive: max-min+1 cells, ascending. */
  | { kind: 'int_range'; ref: ColumnRef; min: number; max: number }
  /** Enumerated values, cells in the listed order. */
  | { kind: 'categories'; ref: ColumnRef; values: Array<string | number> }
  /** Numeric bins: edges e0<e1<...<ek give k cells; `closed` says which edge each bin includes. */
  | { kind: 'bins'; ref: ColumnRef; edges: number[]; closed: 'left' | 'right' }
  /** hour of day 0..23 of a TIMESTAMP column: 24 cells. */
  | { kind: 'hour_of_day'; column: string }
  /** ISO day of week 1 (Monday)..7 (Sunday): 7 cells. */
  | { kind: 'day_of_week'; column: string }
  /** Calendar dates from..to inclusive (YYYY-MM-DD): one cell per day. */
  | { kind: 'date'; column: string; from: string; to: string }

export interface GroupBy {
  /** Output label of this dimension. */
  name: string
  domain: Domain
}

export type Aggregate =
  | { name: string; kind: 'count' }
  /**
   * Fixed-point sum: each record is clipped to [clip[0], clip[1]], multiplied by `scale`
   * (binary64) and rounded half away from zero to an integer, then summed in Z_2^64. NULL (and
   * NaN, and values that fail conversion) are skipped (negotiation.md §3.7).
   */
  | { name: string; kind: 'sum'; column: string; scale: number; clip: [number, number] }
  /** sum and count of non-null values (two slots); output is sum/count. */
  | { name: string; kind: 'mean'; column: string; scale: number; clip: [number, number] }
  /** Each provider counts its own distinct values per cell; the result is the SUM of those counts. */
  | { name: string; kind: 'count_distinct'; column: string }

export interface Timeouts {
  /** Seconds each phase may take (negotiate, compute, confirm). */
  negotiate_s: number
  compute_s: number
  confirm_s: number
}

export interface Participants {
  buyer: string // peer ID
  providers: string[] // peer IDs, sorted canonically
}

export interface Query {
  version: 1
  id: string
  title: string
  dataset: string
  timezone: string
  filter: FilterExpr | null
  group_by: GroupBy[]
  aggregates: Aggregate[]
  /**
   * The bound t each per-cell contribution of a provider is clamped to (negotiation.md §3.7): a
   * count to t, a sum to t·clip, a mean's sum and count together. Bounds overflow; never aborts.
   */
  max_rows_per_provider: number
  participants: Participants
  min_providers: number
  /** Peer IDs that receive the result (default: the buyer only). */
  output: string[]
  timeouts: Timeouts
  /** Differential privacy (protocols/privacy.md, negotiation.md §3.8); absent: exact totals. */
  privacy?: QueryPrivacy
}

/** The privacy unit as the query states it; it must equal the provider's policy for the dataset. */
export type PrivacyUnit = 'row' | { column: string; max_cells: number; max_rows_per_cell: number }

/** The signed `privacy` section: the budget of the whole query and the noise plan every provider follows. */
export interface QueryPrivacy {
  epsilon: number
  delta: number
  unit: PrivacyUnit
  /** cells whose noisy count is below this are marked suppressed in the output (post-processing); null: none */
  suppress_below: number | null
  /** fixed by the buyer (planNoise) and signed: every provider adds N_Z(0, sigmas[s]^2) to slot s of every cell */
  noise: { mechanism: 'discrete_gaussian'; dishonest: number; sigmas: number[] }
}

/** One slot of the vector layout: a value of an aggregate in a cell. */
export type SlotKind = 'count' | 'sum' | 'mean_sum' | 'mean_count' | 'count_distinct'

export interface Slot {
  aggregate: string
  kind: SlotKind
  /** Inclusive bounds a single provider's value may take (plausibility, overflow). */
  scale: number
}
