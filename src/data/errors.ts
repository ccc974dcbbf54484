// A bad dataset entry in config.yaml, or a query that does not fit the dataset's schema: exit 6,
// one line, through `data preview`. A serving provider finds these before signing (negotiation.md
// §6.1); after signing no row value raises one (§3.7), and whatever fails then aborts with
// local_error, the fixed detail COMPUTE_FAILED, and a fixed category in the local log.
export class DataError extends Error {
  override name = 'DataError'
  /** The message for this provider's own eyes (logs, `data preview`): may name the dataset's columns, which `message` (sent to the buyer) never does beyond the query's own. */
  readonly local: string
  constructor(message: string, local?: string) {
    super(message)
    this.local = local ?? message
  }
}

/** The abort detail of a provider whose computation failed after signing: fixed, never data-derived. */
export const COMPUTE_FAILED = 'the provider could not compute its vector'

/** A failure after signing, reduced to a fixed category for the local log: an engine's message may quote the data. */
export function failureCategory(e: unknown): string {
  const m = e instanceof Error ? e.message : ''
  if (/cancelled/i.test(m)) return 'cancelled'
  if (/out of memory|OutOfMemory|Allocation failure/i.test(m)) return 'out of memory'
  if (/does not exist|No files found|IO Error|cannot open|Permission denied/i.test(m)) return 'the source could not be read'
  return 'an error of the local data engine'
}
