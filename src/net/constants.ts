// Protocol IDs and limits of the wire (protocols/negotiation.md §1, masked-sum.md §1).
import { PROTOCOLS } from '../protocol/negotiation-messages.ts'

export const NEGOTIATE_PROTOCOL = PROTOCOLS.negotiate
// one source of truth: the proposal binds exactly these versions (negotiation.md §4)
export const MASKED_SUM_PROTOCOL = PROTOCOLS.masked_sum

/** Largest frame: one 65,536-element chunk (512 KiB) plus headers, or a certificate for 100 providers. */
export const MAX_FRAME_BYTES = 1024 * 1024
/** A stream that sends nothing for this long is torn down (a silent peer must not hold resources). */
export const STREAM_IDLE_MS = 120_000
/** Inbound streams of one protocol per connection: bounds a hostile allowlisted peer. */
export const MAX_INBOUND_STREAMS = 64
/** Time to dial and open a protocol stream before the peer counts as unreachable. */
export const DIAL_TIMEOUT_MS = 10_000
