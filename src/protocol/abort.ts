// Signed abort messages, common to both protocols (negotiation.md §4.5, masked-sum.md §5 and §8).
// Message type 0x7f; body = JCS JSON of AbortMessage. The signature covers
// H("mpc-agent/abort/v1", JCS(body without sig)) with the sender's identity key.
import { canonicalBytes } from '../crypto/canonical.ts'
import { fromHex, toHex } from '../crypto/bytes.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import type { AbortInfo, AbortReason } from './errors.ts'
import { JsonBoundsError, isHexOf, isJsonObject, parseBoundedJson, safeText } from './bounded-json.ts'

export const MSG_ABORT = 0x7f
export const ABORT_LABEL = 'mpc-agent/abort/v1'

export interface AbortMessage {
  type: 'abort'
  /** Session (certificate digest) or proposal digest, hex; null before one exists. */
  session: string | null
  reason: AbortReason
  accused: string | null
  detail: string
  by: string
  evidence: unknown
  sig: string
}

export function encodeAbort(signer: Signer, session: Uint8Array | null, info: AbortInfo): Uint8Array {
  const body = {
    type: 'abort' as const,
    session: session ? toHex(session) : null,
    reason: info.reason,
    accused: info.accused,
    detail: info.detail.slice(0, 500),
    by: signer.peerId,
    evidence: info.evidence ?? null
  }
  const sig = toHex(signer.sign(statementDigest(ABORT_LABEL, body)))
  const json = canonicalBytes({ ...body, sig })
  const out = new Uint8Array(1 + json.length)
  out[0] = MSG_ABORT
  out.set(json, 1)
  return out
}

/** Exactly the fields of an ABORT (§4.5); anything else is a malformed abort. */
const ABORT_KEYS = ['type', 'session', 'reason', 'accused', 'detail', 'by', 'evidence', 'sig'] as const
/** A reason code as the protocols write them; a claimed code outside this form is malformed. */
const REASON_CODE = /^[a-z_]{1,64}$/
/** Peer IDs are base58btc (canonical form, negotiation.md §2.2); bounded so a claim stays one short line. */
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/
export const MAX_ABORT_DETAIL = 500

/** Why a decoded ABORT body is malformed, or null: every field is type-checked before anything reads it. */
function abortShapeError(m: unknown): string | null {
  if (!isJsonObject(m)) return 'not a JSON object'
  const keys = Object.keys(m)
  if (keys.length !== ABORT_KEYS.length || !ABORT_KEYS.every((k) => Object.hasOwn(m, k))) return `not exactly the fields ${ABORT_KEYS.join(', ')}`
  if (m.type !== 'abort') return 'type is not "abort"'
  if (m.session !== null && !isHexOf(m.session, 32)) return 'session is neither null nor 32 bytes of hex'
  if (typeof m.reason !== 'string' || !REASON_CODE.test(m.reason)) return 'reason is not a reason code'
  if (m.accused !== null && (typeof m.accused !== 'string' || !PEER_ID.test(m.accused))) return 'accused is neither null nor a peer ID'
  if (typeof m.detail !== 'string' || m.detail.length > MAX_ABORT_DETAIL) return `detail is not a string of at most ${MAX_ABORT_DETAIL} characters`
  if (typeof m.by !== 'string' || !PEER_ID.test(m.by)) return 'by is not a peer ID'
  if (!isHexOf(m.sig, 64)) return 'sig is not 64 bytes of hex'
  return null
}

/**
 * Decode an abort received from `remote` (the authenticated stream peer). Never throws: the body is
 * parsed within WIRE_JSON_LIMITS (depth, size, string lengths) and every field type-checked before
 * anything reads it; a frame that fails becomes `malformed_message` accusing `remote`, without its
 * evidence. Returns the AbortInfo a receiver records: if the signature or sender does not verify,
 * the claim is still reported but as "remote says", never as established fact (masked-sum.md §8).
 * `detail` is made safe to print (control characters replaced).
 */
export function decodeAbort(payload: Uint8Array, remote: string): AbortInfo & { verified: boolean } {
  const malformed = (why: string): AbortInfo & { verified: boolean } =>
    ({ reason: 'malformed_message', accused: remote, detail: `malformed abort message: ${why}`, verified: false, by: remote })
  let m: unknown
  try {
    m = parseBoundedJson(payload.subarray(1))
  } catch (e) {
    return malformed(e instanceof JsonBoundsError ? e.message : 'undecodable')
  }
  const why = abortShapeError(m)
  if (why) return malformed(why)
  const a = m as unknown as AbortMessage
  const { sig, ...body } = a
  let verified = false
  try {
    verified = a.by === remote && verifySignature(parsePeer(remote).publicKey, statementDigest(ABORT_LABEL, body), fromHex(sig, 64))
  } catch {
    verified = false
  }
  return {
    reason: a.reason,
    accused: a.accused,
    detail: safeText(a.detail, MAX_ABORT_DETAIL),
    evidence: a.evidence,
    by: remote,
    verified
  }
}
