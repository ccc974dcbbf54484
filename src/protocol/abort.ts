// Signed abort messages, common to both protocols (negotiation.md §4.5, masked-sum.md §5 and §8).
// Message type 0x7f; body = JCS JSON of AbortBody. The signature covers
// H("mpc-agent/abort/v2", JCS(body without sig)) with the sender's identity key. The body names the
// session, the sender (`by`) and the recipient (`to`), so an abort can be replayed neither into
// another run nor as addressed to another peer.
//
// Relays: a party that aborts because it received an abort does not repeat the claim under its own
// name. It accuses nobody and embeds the original signed abort once, as `cause` (the original's own
// `cause` is always null: never a relay of a relay). Receivers verify the top-level signature only;
// the cause and the evidence are verified offline (`mpc-agent evidence verify`, evidence.ts).
import { canonicalBytes } from '../crypto/canonical.ts'
import { fromHex, toHex } from '../crypto/bytes.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import type { AbortInfo, AbortReason } from './errors.ts'
import { JsonBoundsError, isHexOf, isJsonObject, parseBoundedJson, safeText } from './bounded-json.ts'

export const MSG_ABORT = 0x7f
export const ABORT_LABEL = 'mpc-agent/abort/v2'
export const ABORT_VERSION = 2
/** An encoded abort fits one frame (src/net/constants.ts MAX_FRAME_BYTES) with room for framing. */
export const MAX_ABORT_BYTES = 1024 * 1024 - 64
/** Most providers a query may name (query/validate.ts); evidence holds at most 2N + 4 signatures. */
export const MAX_PROVIDERS = 100
export const MAX_EVIDENCE_SIGNATURES = 2 * MAX_PROVIDERS + 4

export interface AbortBody {
  v: 2
  type: 'abort'
  /**
   * The run's session (certificate digest), or in negotiation the proposal digest, hex. null only
   * for a refusal sent before any proposal was read: such an abort binds to no run and proves nothing.
   */
  session: string | null
  /** The sender. */
  by: string
  /** The recipient (the stream's peer); null only in a statement saved for the record (evidence bundle). */
  to: string | null
  reason: AbortReason
  accused: string | null
  disputants: [string, string] | null
  detail: string
  evidence: unknown
  /** The original signed abort this one relays (whose own cause is null), or null. */
  cause: AbortMessage | null
}
export interface AbortMessage extends AbortBody { sig: string }

const BODY_KEYS = ['v', 'type', 'session', 'by', 'to', 'reason', 'accused', 'disputants', 'detail', 'evidence', 'cause', 'sig'] as const

/** The signed statement of `info` by `signer`, addressed to `to` (null: for the record). */
export function signAbort(signer: Signer, session: Uint8Array | null, to: string | null, info: AbortInfo): AbortMessage {
  const own = info.cause === undefined || info.cause === null
  const body: AbortBody = {
    v: 2,
    type: 'abort',
    session: session ? toHex(session) : null,
    by: signer.peerId,
    to,
    reason: info.reason,
    // an accusation is signed only when settle() checked that its evidence proves it (evidence.ts)
    accused: own && info.proven ? info.accused : null,
    disputants: own ? disputantsOf(info, signer.peerId) : info.disputants ?? null,
    detail: info.detail.slice(0, 500),
    evidence: own && info.evidence !== undefined ? info.evidence : null,
    cause: own ? null : (info.cause as AbortMessage)
  }
  let signed: AbortMessage = { ...body, sig: toHex(signer.sign(statementDigest(ABORT_LABEL, body))) }
  if (canonicalBytes(signed).length > MAX_ABORT_BYTES) {
    // bounded (≤ 1 MiB): the evidence stays with the accuser (its saved bundle); the wire carries the claim
    const slim: AbortBody = { ...body, accused: null, evidence: null, cause: null, detail: `${body.detail.slice(0, 400)} (evidence too large for the wire)` }
    signed = { ...slim, sig: toHex(signer.sign(statementDigest(ABORT_LABEL, slim))) }
  }
  return signed
}

/** An unproven accusation as the dispute it is: [self, accused]; an existing dispute as is. */
function disputantsOf(info: AbortInfo, self: string): [string, string] | null {
  if (info.disputants) return info.disputants
  if (info.accused && !info.proven && info.accused !== self) return [self, info.accused]
  return null
}

export function encodeAbort(signer: Signer, session: Uint8Array | null, to: string | null, info: AbortInfo): Uint8Array {
  const json = canonicalBytes(signAbort(signer, session, to, info))
  const out = new Uint8Array(1 + json.length)
  out[0] = MSG_ABORT
  out.set(json, 1)
  return out
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => isJsonObject(v)
const isHex = (v: unknown, bytes: number): boolean => isHexOf(v, bytes)
/** Peer IDs are base58btc (canonical form, negotiation.md §2.2); bounded so a claim stays one short line. */
const isPeerish = (v: unknown): v is string => typeof v === 'string' && /^[1-9A-HJ-NP-Za-km-z]{1,128}$/.test(v)
/** A reason code as the protocols write them; a claimed code outside this form is malformed. */
const REASON_CODE = /^[a-z_]{1,64}$/
export const MAX_ABORT_DETAIL = 500

/** Shape of an abort message (no signature check); `nested` for a cause, whose own cause must be null. */
export function abortShapeProblem(m: unknown, nested = false): string | null {
  if (!isObj(m)) return 'not a JSON object'
  const keys = Object.keys(m)
  if (keys.length !== BODY_KEYS.length || !BODY_KEYS.every((k) => Object.hasOwn(m, k))) return `fields must be exactly ${BODY_KEYS.join(', ')}`
  if (m.v !== ABORT_VERSION || m.type !== 'abort') return `not an abort of version ${ABORT_VERSION}`
  if (m.session !== null && !isHex(m.session, 32)) return 'session is not 32 bytes of hex'
  if (!isPeerish(m.by) || (m.to !== null && !isPeerish(m.to))) return 'by / to are not peer IDs'
  if (typeof m.reason !== 'string' || !REASON_CODE.test(m.reason)) return 'reason is not a reason code'
  if (m.accused !== null && !isPeerish(m.accused)) return 'accused is not a peer ID'
  if (m.disputants !== null && !(Array.isArray(m.disputants) && m.disputants.length === 2 && m.disputants.every(isPeerish))) return 'disputants are not two peer IDs'
  if (typeof m.detail !== 'string' || m.detail.length > 500) return 'detail is not a string of at most 500 characters'
  if (!isHex(m.sig, 64)) return 'sig is not 64 bytes of hex'
  if (m.cause !== null) {
    if (nested) return 'a relay of a relay'
    const p = abortShapeProblem(m.cause, true)
    if (p) return `cause: ${p}`
  }
  return null
}

/** The top-level signature of a well-shaped abort verifies under `by`'s key. */
export function abortSignatureValid(m: AbortMessage): boolean {
  try {
    const { sig, ...body } = m
    return verifySignature(parsePeer(m.by).publicKey, statementDigest(ABORT_LABEL, body), fromHex(sig, 64))
  } catch {
    return false
  }
}

/** Where a received abort must bind: the run's session (or proposal digest) and this party. */
export interface AbortBinding {
  self: string
  session: Uint8Array | null
  /** The run's buyer, to name the buyer–provider dispute of a `no_certificate` notice. */
  buyer?: string
}

export type DecodedAbort = { ok: true; msg: AbortMessage } | { ok: false; problem: string; reason?: string; detail?: string }

/**
 * Decode and check an abort received from `remote` (the authenticated stream peer): shape, sender,
 * recipient, session, top-level signature. Only the top level is verified here (inline); a cause
 * and evidence are verified offline.
 */
export function decodeAbort(payload: Uint8Array, remote: string, bind: AbortBinding): DecodedAbort {
  let m: unknown
  try {
    // within the wire bounds (depth, size, string lengths) before anything reads it (negotiation.md §2.2)
    m = parseBoundedJson(payload.subarray(1))
  } catch (e) {
    return { ok: false, problem: `undecodable abort message${e instanceof JsonBoundsError ? ` (${e.message})` : ''}` }
  }
  const claimed = isObj(m) ? { reason: typeof m.reason === 'string' ? safeText(m.reason, 64) : undefined, detail: typeof m.detail === 'string' ? safeText(m.detail, MAX_ABORT_DETAIL) : undefined } : {}
  const shape = abortShapeProblem(m)
  if (shape) return { ok: false, problem: `malformed abort (${shape})`, ...claimed }
  const a = m as AbortMessage
  if (a.by !== remote) return { ok: false, problem: `abort signed as ${a.by}, not by the stream's peer`, ...claimed }
  if (a.to !== bind.self) return { ok: false, problem: 'abort addressed to another peer', ...claimed }
  const want = bind.session ? toHex(bind.session) : null
  if (a.session === null || a.session !== want) return { ok: false, problem: a.session === null ? 'abort bound to no session' : 'abort bound to another session', ...claimed }
  if (a.cause && a.cause.session !== a.session) return { ok: false, problem: 'relayed cause bound to another session', ...claimed }
  if (!abortSignatureValid(a)) return { ok: false, problem: 'abort signature does not verify', ...claimed }
  return { ok: true, msg: a }
}

/**
 * What a receiver records when `remote` aborts: a relay that accuses nobody, with the original
 * signed abort as its cause. A `no_certificate` notice becomes the buyer–remote dispute it names.
 */
export function heardAbort(payload: Uint8Array, remote: string, bind: AbortBinding): AbortInfo {
  const d = decodeAbort(payload, remote, bind)
  if (!d.ok) {
    const said = d.reason ? ` (it claimed ${d.reason}${d.detail ? `: ${d.detail}` : ''})` : ''
    return { reason: 'peer_abort', accused: null, by: remote, detail: `${remote} aborted; its abort is not evidence: ${d.problem}${said}`.slice(0, 500) }
  }
  const root = d.msg.cause ?? d.msg
  if (root.reason === 'no_certificate' && bind.buyer && bind.buyer !== root.by) {
    // the notice (directly or relayed) names the buyer–notifier dispute: nobody is accused
    return {
      reason: 'no_certificate', accused: null, disputants: [bind.buyer, root.by], by: remote, cause: root,
      detail: `${root.by} received no certificate for this session from the buyer ${bind.buyer}`
    }
  }
  return { reason: 'peer_abort', accused: null, by: remote, cause: root, detail: safeText(`${remote} aborted: ${describeAbort(root)}`, MAX_ABORT_DETAIL) }
}

/** One line: who says what about whom, in the terms the protocol can justify. */
export function describeAbort(a: { by?: string | null; reason: string; accused: string | null; disputants?: [string, string] | null; detail: string; cause?: unknown }): string {
  if (isObj(a.cause)) return `${a.by ?? 'a peer'} relays the abort of ${String(a.cause.by)}: ${describeAbort(a.cause as unknown as AbortMessage)}`
  const d = a.disputants
  const who = a.accused ? `${a.by ?? 'the sender'} accuses ${a.accused} (a claim: its evidence is checked offline)`
    : d ? (a.reason === 'timeout' || a.reason === 'unreachable' ? `no answer from ${d[1]} (as seen by ${d[0]})` : `dispute between ${d[0]} and ${d[1]}`)
    : 'nobody is named'
  return `${a.reason}, ${who}: ${a.detail}`
}

/** The original reason of a possibly relayed abort (exit codes: a relayed timeout is still a timeout). */
export function rootReason(info: AbortInfo): string {
  return isObj(info.cause) && typeof info.cause.reason === 'string' ? info.cause.reason : info.reason
}
