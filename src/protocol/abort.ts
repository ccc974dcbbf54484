// Signed abort messages, common to both protocols (negotiation.md §4.5, masked-sum.md §5 and §8).
// Message type 0x7f; body = JCS JSON of AbortMessage. The signature covers
// H("mpc-agent/abort/v1", JCS(body without sig)) with the sender's identity key.
import { canonicalBytes } from '../crypto/canonical.ts'
import { fromHex, fromUtf8, toHex } from '../crypto/bytes.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import type { AbortInfo, AbortReason } from './errors.ts'

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

/**
 * Decode an abort received from `remote` (the authenticated stream peer). Returns the AbortInfo a
 * receiver records: if the signature or sender does not verify, the claim is still reported but
 * as "remote says", never as established fact (masked-sum.md §8).
 */
export function decodeAbort(payload: Uint8Array, remote: string): AbortInfo & { verified: boolean } {
  let m: AbortMessage
  try {
    m = JSON.parse(fromUtf8(payload.subarray(1))) as AbortMessage
  } catch {
    return { reason: 'malformed_message', accused: remote, detail: 'undecodable abort message', verified: false, by: remote }
  }
  const { sig, ...body } = m
  let verified = false
  try {
    verified = m.by === remote && typeof sig === 'string' &&
      verifySignature(parsePeer(remote).publicKey, statementDigest(ABORT_LABEL, body), fromHex(sig, 64))
  } catch {
    verified = false
  }
  return {
    reason: typeof m.reason === 'string' ? m.reason : 'peer_abort',
    accused: typeof m.accused === 'string' ? m.accused : null,
    detail: String(m.detail ?? '').slice(0, 500),
    evidence: m.evidence,
    by: remote,
    verified
  }
}
