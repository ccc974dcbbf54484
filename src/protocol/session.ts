// What the masked-sum phase needs from an agreement certificate. Built by the negotiation
// layer (sessionParamsFromCertificate) and consumed by the masked-sum runners: the seam
// between the two protocols.
import type { SlotBound } from '../query/layout.ts'
import type { Timeouts } from '../query/types.ts'

export interface SessionParams {
  /** Session identifier: the digest of the agreement certificate body (32 bytes). */
  session: Uint8Array
  /** The buyer's Ed25519 signature over the certificate body digest (check 3 evidence). */
  buyerSignature: Uint8Array
  buyer: string
  /** Provider peer IDs in canonical order (multihash byte order). */
  providers: string[]
  /** Each provider's ephemeral X25519 public key from its signed acceptance. */
  ephemeralKeys: Map<string, Uint8Array>
  /** Data length (cells * slots) before canaries. */
  length: number
  /** Plausibility bounds per slot, repeating every bounds.length entries of the data part. */
  bounds: SlotBound[]
  /** Which slots decode as signed (two's complement). Same length as bounds. */
  signed: boolean[]
  /** Peer IDs that receive the result besides the buyer. */
  outputProviders: string[]
  timeouts: Timeouts
  /**
   * Absolute deadline (ms since epoch) for the whole run, from the signed proposal. The runners fail
   * the run with `timeout` once it passed by more than the clock-skew allowance (run-context.ts).
   */
  deadline: number
}
