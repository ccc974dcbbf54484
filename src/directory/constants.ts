// Protocol ID and limits of the directory of peers (protocols/directory.md §1, §3.3). Each limit says why.
import type { JsonLimits } from '../protocol/bounded-json.ts'
import { ENTRY_LIMITS } from '../agent/peer-entry-v2.ts'

export const DIRECTORY_PROTOCOL = '/mpc-agent/directory/1.0.0'
/** Largest request: a PUBLISH carries one entry (≤ ENTRY_LIMITS.bytes) plus a few bytes of envelope. */
export const MAX_REQUEST_BYTES = ENTRY_LIMITS.bytes + 1_024
/** Entries per ENTRIES page: 100 entries of at most 8 KiB fit one 1 MiB frame with room. */
export const PAGE_SIZE = 100
/** Largest response frame: one page (the transport's frame limit, net/constants.ts). */
export const MAX_RESPONSE_BYTES = 1024 * 1024
/** Pages a client follows before it stops: 50 × 100 = the default cap on entries, with margin. */
export const MAX_PAGES = 50
/** A request must arrive this soon after the stream opens (a silent peer holds nothing longer). */
export const REQUEST_TIMEOUT_MS = 10_000
/** A client waits this long for each response. */
export const RESPONSE_TIMEOUT_MS = 10_000
/** Peers (live entries plus seq records of expired ones) a directory keeps; a new peer beyond it is refused. */
export const DEFAULT_MAX_PEERS = 1_000
/** One peer may publish at most once per this interval: bounds the fsync'ed writes one peer can cause. */
export const DEFAULT_MIN_PUBLISH_INTERVAL_MS = 1_000
/** Concurrent directory streams per connection (a client needs one at a time). */
export const MAX_STREAMS_PER_CONNECTION = 4
/**
 * JSON bounds of directory messages: an entry nests 4 deep inside the envelope (ENTRIES → list →
 * entry → policy/addrs), 10 keys; a page holds PAGE_SIZE entries; a string is at most an address.
 */
export const DIRECTORY_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ depth: 6, keys: 16, array: PAGE_SIZE, string: ENTRY_LIMITS.addrChars, nodes: 20_000 })
