// Events of one agent run, as the reporter (plain text / NDJSON) and the ink UI consume them.
// Documented in README ("--json events"); `v` is the schema version. End events of `query run`
// carry `names` (peer ID → configured name) so scripts need not map IDs themselves. Never carries raw data,
// unmasked vectors, seeds or keys.
import type { ProtocolEvent } from '../protocol/events.ts'
import type { AbortInfo } from '../protocol/errors.ts'

export const EVENT_SCHEMA_VERSION = 1

export type RunEvent =
  | (ProtocolEvent & { v: 1 })
  | { v: 1; type: 'log'; level: 'info' | 'warn'; message: string }
  | { v: 1; type: 'ready'; peerId: string; addrs: string[] }
  /** query run: a connected provider has not decided yet (its policy may ask its operator to approve). */
  | { v: 1; type: 'waiting'; peer: string; name: string; seconds: number }
  | {
      v: 1
      type: 'proposal'
      proposalId: string
      buyer: string
      dataset: string
      title: string
      columns: string[]
      cells: number
      providers: string[]
      policy: { accept: boolean; reasons: string[] }
    }
  | { v: 1; type: 'result'; session: string; cells: number; out: string | null; top: Array<{ label: string; value: number; values?: Record<string, number | null> }>; aggregates?: string[]; names?: Record<string, string>; privacy?: ResultNoise }
  | { v: 1; type: 'abort'; session: string | null; abort: AbortInfo; exitCode: number; names?: Record<string, string> }
  | { v: 1; type: 'error'; message: string; exitCode: number; names?: Record<string, string> }

/** On a result event of a privacy query: how noisy every cell is (protocols/privacy.md §7), per aggregate in value
 * units: the total noise's standard deviation and the 95% interval's half-width. */
export interface ResultNoise {
  mechanism: string
  epsilon: number
  delta: number
  aggregates: Record<string, { std: number; half_width_95: number }>
}
