// Messages of /mpc-agent/negotiate/2.0.0 and every check on them (protocols/negotiation.md §4).
// Pure and synchronous: each party runs these on whatever arrives; nothing is trusted by shape.
// The runners (buyer, provider) are in negotiation.ts.
import { canonicalBytes, canonicalize } from '../crypto/canonical.ts'
import { equalBytes, fromHex, toHex } from '../crypto/bytes.ts'
import { isUnusableX25519Key } from '../crypto/kdf.ts'
import { statementDigest, verifySignature } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import { layoutOf, totalBounds } from '../query/layout.ts'
import type { Query } from '../query/types.ts'
import { MSG_ABORT, heardAbort, type AbortBinding } from './abort.ts'
import { JsonBoundsError, WIRE_JSON_LIMITS, parseBoundedJson } from './bounded-json.ts'
import { ProtocolAbort, type AbortReason } from './errors.ts'
import type { EventSink } from './events.ts'
import type { SessionParams } from './session.ts'

/** The protocol versions a proposal binds (negotiation.md §4, PROPOSAL.protocols). */
export const PROTOCOLS = { negotiate: '/mpc-agent/negotiate/2.0.0', masked_sum: '/mpc-agent/masked-sum/4.0.0' } as const
/** Type bytes (negotiation.md §4); ABORT is 0x7f (abort.ts). */
export const NEG = { proposal: 0x01, accept: 0x02, reject: 0x03, certificate: 0x04 } as const
/** Hash/signature labels (negotiation.md §2.3). */
export const LABELS = {
  proposal: 'mpc-agent/negotiate/v2/proposal',
  accept: 'mpc-agent/negotiate/v2/accept',
  reject: 'mpc-agent/negotiate/v2/reject',
  certificate: 'mpc-agent/negotiate/v2/certificate'
} as const
/** Clock skew tolerated between agents when checking deadlines (negotiation.md §5). */
export const CLOCK_SKEW_MS = 30_000
/** Deepest JSON nesting accepted (negotiation.md §2.2; the reasoning is at WIRE_JSON_LIMITS). */
export const MAX_JSON_DEPTH = WIRE_JSON_LIMITS.depth
/** Bounds on a REJECT's reasons (negotiation.md §4): enough for every policy rule, no more. */
export const MAX_REASONS = 32
export const MAX_REASON_CODE = 64
export const MAX_REASON_MESSAGE = 500

export interface Proposal {
  v: 2
  protocols: typeof PROTOCOLS
  query: Query
  /** 32 random bytes, lowercase hex: single use per provider (negotiation.md §5.2). */
  nonce: string
  /** ms since the epoch */
  created: number
  deadline: number
}
export interface SignedProposal { proposal: Proposal; sig: string; digest: Uint8Array }
export interface Reason { code: string; message: string }
export interface AcceptBody { v: 2; type: 'accept'; proposal: string; provider: string; role: 'provider'; decision: 'accept'; ephemeral: string }
export interface RejectBody { v: 2; type: 'reject'; proposal: string; provider: string; role: 'provider'; decision: 'reject'; reasons: Reason[] }
export type SignedAccept = AcceptBody & { sig: string }
export type SignedReject = RejectBody & { sig: string }
export interface CertificateBody { proposal: { proposal: Proposal; sig: string }; acceptances: SignedAccept[] }
export interface Certificate { body: CertificateBody; buyer_sig: string }

export interface NegotiationDeps {
  /** Full query validation (negotiation.md §3); throws on anything invalid. Injected: src/query/validate.ts. */
  checkQuery(raw: unknown): Query
  now(): number
  events?: EventSink
}
export interface VerifiedProposal { proposal: Proposal; digest: Uint8Array; query: Query; buyer: string }
/** What the expecting provider holds when it checks a certificate (negotiation.md §4.3). */
export interface CertificateExpectation {
  proposal: Uint8Array; self: string; ephemeral: Uint8Array; buyer: string
  /**
   * The proposal this provider verified and accepted, with the signature it came with. When the
   * certificate embeds exactly it (same digest, same signature), its verification is not repeated;
   * only the time-dependent deadline check is (negotiation.md §4.3).
   */
  verified?: { proposal: VerifiedProposal; sig: string }
}

export const proposalDigest = (p: Proposal): Uint8Array => statementDigest(LABELS.proposal, p)
/** The session identifier: H("…/certificate", JCS(body)), also what buyer_sig signs. */
export const certificateDigest = (b: CertificateBody): Uint8Array => statementDigest(LABELS.certificate, b)

export function negotiationAbort(reason: AbortReason, accused: string | null, detail: string, evidence?: unknown): ProtocolAbort {
  return new ProtocolAbort({ reason, accused, detail, evidence })
}
const fail = negotiationAbort

// ---- framing (negotiation.md §2.1–2.2) ------------------------------------------------------------

export function encodeMessage(type: number, body: unknown): Uint8Array {
  const json = canonicalBytes(body)
  const out = new Uint8Array(1 + json.length)
  out[0] = type
  out.set(json, 1)
  return out
}

const SENT_BY: Record<number, 'buyer' | 'provider'> = {
  [NEG.proposal]: 'buyer', [NEG.certificate]: 'buyer', [NEG.accept]: 'provider', [NEG.reject]: 'provider'
}

/**
 * Decode one frame from `from`, who plays `role`. An ABORT becomes ProtocolAbort 'peer_abort'; a
 * message the sender's role never sends is 'wrong_role'; anything else unexpected or undecodable
 * is 'malformed_message'. The JSON must be an object within WIRE_JSON_LIMITS (bounded-json.ts).
 */
export function decodeMessage(f: Uint8Array, expected: readonly number[], from: string, role: 'buyer' | 'provider', bind: AbortBinding): { type: number; body: Record<string, unknown> } {
  const type = f[0]
  if (type === undefined) throw fail('malformed_message', from, 'empty message')
  // an ABORT bound to this negotiation (its proposal digest) and addressed to us: a relay, accusing nobody
  if (type === MSG_ABORT) throw new ProtocolAbort(heardAbort(f, from, bind))
  if (!expected.includes(type)) {
    const sender = SENT_BY[type]
    if (sender && sender !== role) throw fail('wrong_role', from, `a ${role} sent message 0x0${type.toString(16)}, which only a ${sender} sends`)
    throw fail('malformed_message', from, `unexpected message type 0x${type.toString(16).padStart(2, '0')} at this step`)
  }
  let m: unknown
  try {
    m = parseBoundedJson(f.subarray(1))
  } catch (e) {
    throw fail('malformed_message', from, `the message is not bounded UTF-8 JSON: ${e instanceof JsonBoundsError ? e.message : 'undecodable'}`)
  }
  if (!isObj(m)) throw fail('malformed_message', from, 'the message is not a JSON object')
  return { type, body: m }
}

type Obj = Record<string, unknown>
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A received value in a detail line: JSON, at most 80 characters. */
const brief = (v: unknown): string => (JSON.stringify(v) ?? String(v)).slice(0, 80)

function exactKeys(o: Obj, keys: readonly string[]): boolean {
  const k = Object.keys(o)
  return k.length === keys.length && keys.every((x) => Object.hasOwn(o, x))
}
const isHex = (v: unknown, bytes: number): v is string => typeof v === 'string' && v.length === bytes * 2 && /^[0-9a-f]*$/.test(v)

/** Ed25519 signature `sig` (hex) of `peer` over `digest`; false on any malformation. */
export function signatureValid(peer: string, digest: Uint8Array, sig: unknown): boolean {
  if (!isHex(sig, 64)) return false
  try {
    return verifySignature(parsePeer(peer).publicKey, digest, fromHex(sig, 64))
  } catch {
    return false
  }
}

// ---- PROPOSAL (negotiation.md §4.1) ---------------------------------------------------------------

const PROPOSAL_KEYS = ['v', 'protocols', 'query', 'nonce', 'created', 'deadline'] as const

/**
 * Check a `{proposal, sig}` received from `buyer` (the authenticated stream peer), in the order of
 * negotiation.md §4.1. Every failure accuses `buyer`. Participation and the nonce are checked by
 * the caller (they depend on who is asking and on its store).
 */
export function verifyProposal(m: unknown, buyer: string, deps: NegotiationDeps): VerifiedProposal {
  if (!isObj(m) || !exactKeys(m, ['proposal', 'sig']) || !isObj(m.proposal) || !isHex(m.sig, 64)) {
    throw fail('malformed_message', buyer, 'a proposal message is exactly {proposal, sig} with a 64-byte hex signature')
  }
  const raw = m.proposal
  let digest: Uint8Array
  try {
    digest = statementDigest(LABELS.proposal, raw)
  } catch (e) {
    throw fail('malformed_message', buyer, `the proposal cannot be canonicalised: ${(e as Error).message}`)
  }
  if (!signatureValid(buyer, digest, m.sig)) throw fail('bad_signature', buyer, `the proposal is not signed by its sender ${buyer}`)
  if (!exactKeys(raw, PROPOSAL_KEYS)) throw fail('malformed_message', buyer, `a proposal has exactly the fields ${PROPOSAL_KEYS.join(', ')}`)
  const pr = raw.protocols
  if (raw.v !== 2 || !isObj(pr) || !exactKeys(pr, ['negotiate', 'masked_sum']) || pr.negotiate !== PROTOCOLS.negotiate || pr.masked_sum !== PROTOCOLS.masked_sum) {
    throw fail('wrong_session', buyer, `the proposal binds other protocol versions than ${PROTOCOLS.negotiate} and ${PROTOCOLS.masked_sum}`)
  }
  if (!isHex(raw.nonce, 32)) throw fail('malformed_message', buyer, 'the proposal nonce must be 32 bytes of lowercase hex')
  const { created, deadline } = raw
  if (!Number.isSafeInteger(created) || !Number.isSafeInteger(deadline) || (deadline as number) <= (created as number) || (created as number) < 0) {
    throw fail('malformed_message', buyer, 'created and deadline must be integers (ms since the epoch), deadline after created')
  }
  checkDeadline(created as number, deadline as number, deps.now(), buyer, 'proposal')
  let query: Query
  try {
    query = deps.checkQuery(raw.query)
  } catch (e) {
    throw fail('malformed_message', buyer, `invalid query: ${(e as Error).message}`)
  }
  // the signed bytes must be the canonical query itself, or parties could read one query two ways
  if (canonicalize(query) !== canonicalize(raw.query)) throw fail('malformed_message', buyer, 'the query is not in canonical form (negotiation.md §3.1)')
  // §5.1: the deadline covers the query's timeouts plus one skew allowance, no more. A far-future
  // deadline would keep the proposal valid, and its nonce stored, for as long as it says.
  const span = maxDeadlineSpan(query)
  if ((deadline as number) - (created as number) > span) {
    throw fail('malformed_message', buyer, `the deadline lies ${Math.round(((deadline as number) - (created as number) - span) / 1000)} s beyond created + negotiate_s + compute_s + confirm_s + ${CLOCK_SKEW_MS / 1000} s (negotiation.md §5.1)`)
  }
  if (query.participants.buyer !== buyer) {
    throw fail('wrong_role', buyer, `the proposal names buyer ${query.participants.buyer}, but ${buyer} sent it`)
  }
  const proposal: Proposal = { ...(raw as unknown as Proposal), query }
  return { proposal, digest, query, buyer }
}

/** negotiation.md §5.1: the longest `deadline − created` a proposal may carry (what createProposal sets). */
export function maxDeadlineSpan(q: Query): number {
  const t = q.timeouts
  return (t.negotiate_s + t.compute_s + t.confirm_s) * 1000 + CLOCK_SKEW_MS
}

/** negotiation.md §5.1: a deadline holds while now ≤ deadline + skew; created may lead by the skew. */
function checkDeadline(created: number, deadline: number, now: number, buyer: string, what: string): void {
  if (deadline + CLOCK_SKEW_MS < now) throw fail('expired', buyer, `the ${what}'s deadline passed ${Math.round((now - deadline) / 1000)} s ago`)
  if (created - CLOCK_SKEW_MS > now) throw fail('expired', buyer, `the ${what} is dated ${Math.round((created - now) / 1000)} s in the future, beyond the clock-skew allowance`)
}

// ---- ACCEPT / REJECT (negotiation.md §4.2) --------------------------------------------------------

export type Answer =
  | { kind: 'accept'; provider: string; accept: SignedAccept }
  | { kind: 'reject'; provider: string; reject: SignedReject }

const ACCEPT_KEYS = ['v', 'type', 'proposal', 'provider', 'role', 'decision', 'ephemeral', 'sig'] as const
const REJECT_KEYS = ['v', 'type', 'proposal', 'provider', 'role', 'decision', 'reasons', 'sig'] as const

/** The buyer's checks of one provider's answer (negotiation.md §4.2); all accuse `provider`. */
export function verifyAnswer(type: number, m: Obj, provider: string, proposal: Uint8Array): Answer {
  const accept = type === NEG.accept
  const kind = accept ? 'accept' : 'reject'
  if (!exactKeys(m, accept ? ACCEPT_KEYS : REJECT_KEYS)) throw fail('malformed_message', provider, `an ${kind} has exactly the fields ${(accept ? ACCEPT_KEYS : REJECT_KEYS).join(', ')}`)
  if (m.type !== kind || m.decision !== kind) throw fail('malformed_message', provider, `message 0x0${type} must say type and decision "${kind}"`)
  if (m.role !== 'provider') throw fail('wrong_role', provider, `the answer claims role ${brief(m.role)}, not "provider"`)
  if (m.provider !== provider) throw fail('not_participant', provider, `the answer names provider ${brief(m.provider)}, not its sender`)
  if (m.v !== 2 || m.proposal !== toHex(proposal)) throw fail('wrong_session', provider, 'the answer is bound to another proposal or version')
  const { sig, ...body } = m
  let digest: Uint8Array
  try {
    digest = statementDigest(accept ? LABELS.accept : LABELS.reject, body)
  } catch (e) {
    throw fail('malformed_message', provider, `the ${kind} cannot be canonicalised: ${(e as Error).message.slice(0, 120)}`)
  }
  if (!signatureValid(provider, digest, sig)) {
    throw fail('bad_signature', provider, `the ${kind} is not signed by ${provider}`)
  }
  if (accept) {
    if (!isHex(m.ephemeral, 32)) throw fail('malformed_message', provider, 'the ephemeral key must be 32 bytes of lowercase hex (X25519)')
    // a low-order key would certify a run whose pair keys with this provider are all zero (each pair would end in
    // check 5 of masked-sum.md): refused before anything is certified, so nobody computes
    if (isUnusableX25519Key(fromHex(m.ephemeral, 32))) throw fail('malformed_message', provider, 'the ephemeral key is a low-order X25519 point (no shared secret)')
    return { kind: 'accept', provider, accept: m as unknown as SignedAccept }
  }
  if (!validReasons(m.reasons)) {
    throw fail('malformed_message', provider, `reasons must be 1..${MAX_REASONS} of {code (≤ ${MAX_REASON_CODE}), message (≤ ${MAX_REASON_MESSAGE})}`)
  }
  return { kind: 'reject', provider, reject: m as unknown as SignedReject }
}

function validReasons(r: unknown): r is Reason[] {
  return Array.isArray(r) && r.length >= 1 && r.length <= MAX_REASONS && r.every((x) =>
    isObj(x) && exactKeys(x, ['code', 'message']) &&
    typeof x.code === 'string' && x.code.length >= 1 && x.code.length <= MAX_REASON_CODE &&
    typeof x.message === 'string' && x.message.length <= MAX_REASON_MESSAGE)
}

// ---- CERTIFICATE (negotiation.md §4.3) ------------------------------------------------------------

/**
 * Check a certificate completely (negotiation.md §4.3). With `expect`, as the provider who accepted
 * `expect.proposal` with `expect.ephemeral`: every fault accuses `expect.buyer` (the stream peer),
 * never whoever the certificate claims.
 */
export function verifyCertificate(raw: unknown, deps: NegotiationDeps, expect?: CertificateExpectation): { certificate: Certificate; params: SessionParams; proposal: VerifiedProposal } {
  const claimed = isObj(raw) && isObj(raw.body) && isObj(raw.body.proposal) && isObj(raw.body.proposal.proposal) &&
    isObj(raw.body.proposal.proposal.query) && isObj(raw.body.proposal.proposal.query.participants)
    ? raw.body.proposal.proposal.query.participants.buyer : undefined
  const accused = expect?.buyer ?? (typeof claimed === 'string' ? claimed : null)
  const bad = (reason: AbortReason, detail: string): never => {
    // evidence.ts decides what it proves: a fault in a certificate body its buyer signed is the buyer's
    throw fail(reason, accused, detail, isObj(raw) ? { kind: 'certificate', certificate: raw } : undefined)
  }
  if (!isObj(raw) || !exactKeys(raw, ['body', 'buyer_sig']) || !isHex(raw.buyer_sig, 64)) return bad('malformed_message', 'a certificate is exactly {body, buyer_sig}')
  const body = raw.body
  if (!isObj(body) || !exactKeys(body, ['proposal', 'acceptances']) || !Array.isArray(body.acceptances) || !isObj(body.proposal) || !isObj(body.proposal.proposal)) {
    return bad('malformed_message', 'a certificate body is exactly {proposal: {proposal, sig}, acceptances: [...]}')
  }
  if (expect) {
    let d: Uint8Array | null = null
    try {
      d = statementDigest(LABELS.proposal, body.proposal.proposal)
    } catch { /* not canonicalisable: not the proposal accepted */ }
    if (!d || !equalBytes(d, expect.proposal)) return bad('invalid_certificate', 'the certificate embeds another proposal than the one this provider accepted')
  }
  if (accused === null) return bad('invalid_certificate', 'the certificate names no buyer')
  let vp: VerifiedProposal
  try {
    // the digest was compared above; with the same signature and no other field these are the bytes we verified
    const seen = expect?.verified
    if (seen && exactKeys(body.proposal, ['proposal', 'sig']) && body.proposal.sig === seen.sig && seen.proposal.buyer === accused) {
      checkDeadline(seen.proposal.proposal.created, seen.proposal.proposal.deadline, deps.now(), accused, 'proposal')
      vp = seen.proposal
    } else vp = verifyProposal(body.proposal, accused, deps)
  } catch (e) {
    if (e instanceof ProtocolAbort) return bad(e.reason, `embedded proposal: ${e.info.detail}`)
    throw e
  }
  const cert = raw as unknown as Certificate
  let session: Uint8Array
  try {
    session = certificateDigest(cert.body)
  } catch (e) {
    return bad('malformed_message', `the certificate body cannot be canonicalised: ${(e as Error).message.slice(0, 120)}`)
  }
  if (!signatureValid(vp.buyer, session, raw.buyer_sig)) return bad('bad_signature', `buyer_sig is not ${vp.buyer}'s signature over the certificate`)
  const providers = vp.query.participants.providers
  const acc = body.acceptances
  if (acc.length !== providers.length) return bad('invalid_certificate', `the certificate has ${acc.length} acceptances for ${providers.length} providers`)
  const digestHex = toHex(vp.digest)
  const keys = new Map<string, string>()
  acc.forEach((a, i) => {
    const p = providers[i] as string
    if (!isObj(a) || a.provider !== p) bad('invalid_certificate', `acceptance ${i} is not ${p}'s (missing, extra, duplicated or out of canonical order)`)
    const { sig, ...ab } = a as Obj
    if (!exactKeys(ab, ACCEPT_KEYS.filter((k) => k !== 'sig')) || ab.v !== 2 || ab.type !== 'accept' || ab.decision !== 'accept' ||
      ab.role !== 'provider' || ab.proposal !== digestHex || !isHex(ab.ephemeral, 32)) {
      bad('invalid_certificate', `the acceptance of ${p} is malformed or bound to another proposal`)
    }
    const eph = ab.ephemeral as string
    // checked before the signature: a validly signed acceptance of ours with another key is a replay
    if (expect && p === expect.self && eph !== toHex(expect.ephemeral)) bad('replay', 'this provider\'s acceptance does not carry the ephemeral key it holds (replayed or altered)')
    if (!signatureValid(p, statementDigest(LABELS.accept, ab), sig)) bad('invalid_certificate', `the acceptance of ${p} is not signed by ${p} (forged)`)
    const dup = keys.get(eph)
    if (dup) bad('invalid_certificate', `${p} and ${dup} carry the same ephemeral key`)
    keys.set(eph, p)
  })
  if (expect && !keys.has(toHex(expect.ephemeral))) return bad('replay', 'the certificate does not carry this provider\'s acceptance')
  return { certificate: cert, params: paramsOf(cert, vp.query, session), proposal: vp }
}

/** SessionParams of a certificate, which is verified completely first (negotiation.md §4.4). */
export function sessionParamsFromCertificate(c: Certificate, deps: NegotiationDeps): SessionParams {
  return verifyCertificate(c, deps).params
}

/** For check 3: the session and proposal of a certificate a co-provider shows, and whether the buyer signed it. */
export function verifyCertificateSignature(raw: unknown): { session: Uint8Array; proposal: Uint8Array; buyer: string; buyerSigned: boolean; providers?: string[] } | null {
  if (!isObj(raw) || !isObj(raw.body) || !isObj(raw.body.proposal) || !isObj(raw.body.proposal.proposal)) return null
  const p = raw.body.proposal.proposal
  const buyer = isObj(p.query) && isObj(p.query.participants) ? p.query.participants.buyer : undefined
  if (typeof buyer !== 'string' || typeof raw.buyer_sig !== 'string') return null
  try {
    const session = statementDigest(LABELS.certificate, raw.body)
    const listed = isObj(p.query) && isObj(p.query.participants) ? p.query.participants.providers : undefined
    const providers = Array.isArray(listed) && listed.every((x) => typeof x === 'string') ? listed as string[] : undefined
    return { session, proposal: statementDigest(LABELS.proposal, p), buyer, buyerSigned: signatureValid(buyer, session, raw.buyer_sig), providers }
  } catch {
    return null
  }
}

/** negotiation.md §4.4: what the masked sum takes from a verified certificate. */
export function paramsOf(c: Certificate, q: Query, session: Uint8Array): SessionParams {
  const layout = layoutOf(q)
  return {
    session,
    buyerSignature: fromHex(c.buyer_sig, 64),
    buyer: q.participants.buyer,
    providers: [...q.participants.providers],
    ephemeralKeys: new Map(c.body.acceptances.map((a) => [a.provider, fromHex(a.ephemeral, 32)])),
    length: layout.length,
    bounds: totalBounds(q, q.participants.providers.length),
    signed: layout.slots.map((s) => s.signed || q.privacy !== undefined), // noisy slots decode as signed (privacy.md §7)
    outputProviders: q.output.filter((p) => p !== q.participants.buyer),
    timeouts: { ...q.timeouts },
    deadline: c.body.proposal.proposal.deadline
  }
}
