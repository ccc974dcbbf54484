// Named outcomes of a run. Every abort carries a reason code from protocols/*.md, the accused
// peer (or null when the protocol cannot attribute), and verifiable evidence where there is some.

export type AbortReason =
  | 'wrong_session' // check 1: message bound to another session / certificate / version
  | 'not_participant' // check 2: sender is not a participant
  | 'wrong_role' // check 2: message from the wrong role
  | 'buyer_equivocation' // check 3: providers hold different buyer-signed certificates
  | 'bad_vector' // check 4: length, chunking, duplicate / out-of-order chunk, DONE not matching the stream
  | 'key_confirmation_failed' // check 5
  | 'canary_nonzero' // check 6 (unattributable)
  | 'implausible_result' // check 6 (unattributable)
  | 'inclusion_mismatch' // check 7
  | 'timeout' // check 8: a peer missed a phase deadline
  | 'unreachable' // a peer could not be dialled
  | 'malformed_message' // undecodable or schema-violating message
  | 'bad_signature' // a signature that does not verify
  | 'invalid_certificate' // negotiation: certificate fails verification
  | 'replay' // negotiation: nonce or certificate seen before / ephemeral key not held
  | 'expired' // negotiation: deadline passed
  | 'no_certificate' // masked sum: a provider was contacted for a session the buyer never certified to it
  | 'peer_abort' // a remote party aborted and told us why (its signed abort is the `cause`)
  | 'local_error' // this party failed locally (data, internal) and aborted the run

export interface AbortInfo {
  reason: AbortReason
  /**
   * Peer ID at fault, only where `evidence` proves it to a third party (src/protocol/evidence.ts);
   * null otherwise. An accusation without such evidence is turned into a dispute before anything
   * signs or records it (settle()).
   */
  accused: string | null
  /**
   * Set when the check cannot be attributed: [observer, other]. With reason `timeout` or
   * `unreachable` it reads "no answer from other (as seen by observer)", else "dispute between
   * observer and other". Never both this and `accused`.
   */
  disputants?: [string, string] | null
  /** Human-readable, one line. Never contains raw data or unmasked values. */
  detail: string
  /** JSON-serialisable evidence (signed messages) that lets a third party verify the accusation. */
  evidence?: unknown
  /** Who raised it (peer ID); set when the abort came from a remote party. */
  by?: string
  /** For a relayed abort: the original signed abort (abort.ts AbortMessage), never a relay itself. */
  cause?: unknown
  /** Set by settle() when `evidence` was checked to prove the accusation (never on the wire). */
  proven?: string
}

export class ProtocolAbort extends Error {
  override name = 'ProtocolAbort'
  readonly info: AbortInfo
  /** The certified session the abort ended (hex), once there is one; set by the agent that ran it. */
  session: string | null = null
  constructor(info: AbortInfo) {
    const who = info.accused ? ` (accused ${info.accused})`
      : info.disputants ? (info.reason === 'timeout' || info.reason === 'unreachable'
        ? ` (no answer from ${info.disputants[1]} as seen by ${info.disputants[0]})`
        : ` (dispute between ${info.disputants[0]} and ${info.disputants[1]})`) : ''
    super(`${info.reason}${who}: ${info.detail}`)
    this.info = info
  }
  get reason(): AbortReason {
    return this.info.reason
  }
  get accused(): string | null {
    return this.info.accused
  }
}

export interface Rejection {
  provider: string
  reasons: Array<{ code: string; message: string }>
}

/** One or more providers rejected the proposal under their policy (exit 3). */
export class PolicyRejected extends Error {
  override name = 'PolicyRejected'
  readonly rejections: Rejection[]
  constructor(rejections: Rejection[]) {
    super(rejections.map((r) => `${r.provider}: ${r.reasons.map((x) => x.message).join('; ')}`).join(' | '))
    this.rejections = rejections
  }
}
