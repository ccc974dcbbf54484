// /mpc-agent/negotiate/1.0.0 (protocols/negotiation.md): the buyer proposes, every provider
// answers with a signed acceptance (carrying a fresh X25519 key) or a signed rejection, and the buyer
// assembles the agreement certificate. Pure protocol over Channels; policy, nonces and query
// validation are injected.
import { randomBytes } from 'node:crypto'
import { canonicalBytes } from '../crypto/canonical.ts'
import { equalBytes, fromHex, fromUtf8, toHex, wipe } from '../crypto/bytes.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import { ephemeralKeyPair } from '../crypto/kdf.ts'
import { layoutOf, slotBounds } from '../query/layout.ts'
import type { Query } from '../query/types.ts'
import { MSG_ABORT, decodeAbort, encodeAbort } from './abort.ts'
import { PolicyRejected, ProtocolAbort, type AbortInfo, type AbortReason, type Rejection } from './errors.ts'
import type { EventSink } from './events.ts'
import type { SessionParams } from './session.ts'
import type { Channel } from './transport.ts'

export const PROTOCOLS = { negotiate: '/mpc-agent/negotiate/1.0.0', masked_sum: '/mpc-agent/masked-sum/1.0.0' } as const
export const NEG = { proposal: 0x01, accept: 0x02, reject: 0x03, certificate: 0x04 } as const
export const LABELS = {
  proposal: 'mpc-agent/negotiate/v1/proposal',
  accept: 'mpc-agent/negotiate/v1/accept',
  reject: 'mpc-agent/negotiate/v1/reject',
  certificate: 'mpc-agent/negotiate/v1/certificate'
} as const
/** Clock skew tolerated between agents when checking deadlines (negotiation.md §5). */
export const CLOCK_SKEW_MS = 30_000

export interface Proposal {
  v: 1
  protocols: typeof PROTOCOLS
  query: Query
  nonce: string
  created: number
  deadline: number
}
export interface SignedProposal { proposal: Proposal; sig: string; digest: Uint8Array }
export interface AcceptBody { v: 1; type: 'accept'; proposal: string; provider: string; role: 'provider'; decision: 'accept'; ephemeral: string }
export interface RejectBody { v: 1; type: 'reject'; proposal: string; provider: string; role: 'provider'; decision: 'reject'; reasons: Array<{ code: string; message: string }> }
export type SignedAccept = AcceptBody & { sig: string }
export type SignedReject = RejectBody & { sig: string }
export interface CertificateBody { proposal: { proposal: Proposal; sig: string }; acceptances: SignedAccept[] }
export interface Certificate { body: CertificateBody; buyer_sig: string }

export interface NegotiationDeps {
  checkQuery(raw: unknown): Query
  now(): number
  events?: EventSink
}
export interface VerifiedProposal { proposal: Proposal; digest: Uint8Array; query: Query; buyer: string }
export interface ProviderDecision { accept: boolean; reasons: Array<{ code: string; message: string }> }
export interface NonceStore { has(nonceHex: string): boolean; add(nonceHex: string, expiresAt: number): void }
export type ProviderOutcome =
  | { kind: 'rejected'; proposal: VerifiedProposal; reasons: ProviderDecision['reasons'] }
  | { kind: 'certified'; proposal: VerifiedProposal; certificate: Certificate; params: SessionParams; ephemeralPrivateKey: Uint8Array }

const abort = (reason: AbortReason, accused: string | null, detail: string, evidence?: unknown): ProtocolAbort =>
  new ProtocolAbort({ reason, accused, detail, evidence })

export const proposalDigest = (p: Proposal): Uint8Array => statementDigest(LABELS.proposal, p)
export const certificateDigest = (b: CertificateBody): Uint8Array => statementDigest(LABELS.certificate, b)

function frame(type: number, body: unknown): Uint8Array {
  const json = canonicalBytes(body)
  const out = new Uint8Array(1 + json.length)
  out[0] = type
  out.set(json, 1)
  return out
}

function decode(f: Uint8Array, type: number, from: string): Record<string, unknown> {
  if (f[0] === MSG_ABORT) {
    const info = decodeAbort(f, from)
    throw new ProtocolAbort({ ...info, detail: `${from} aborted${info.verified ? '' : ' (unverified claim)'}: ${info.detail}`, by: from })
  }
  if (f[0] !== type) throw abort('malformed_message', from, `expected negotiation message 0x0${type}, got 0x${(f[0] ?? 0).toString(16)}`)
  let m: unknown
  try {
    m = JSON.parse(fromUtf8(f.subarray(1)))
  } catch {
    throw abort('malformed_message', from, 'undecodable JSON')
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw abort('malformed_message', from, 'message is not an object')
  return m as Record<string, unknown>
}

function sigOk(peer: string, label: string, body: unknown, sig: unknown): boolean {
  if (typeof sig !== 'string') return false
  try {
    return verifySignature(parsePeer(peer).publicKey, statementDigest(label, body), fromHex(sig, 64))
  } catch {
    return false
  }
}

async function receiveWithin(ch: Channel, ms: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
  const timer = AbortSignal.timeout(Math.max(1, ms))
  try {
    return await ch.receive({ signal: signal ? AbortSignal.any([timer, signal]) : timer })
  } catch (e) {
    if (signal?.aborted) throw signal.reason instanceof ProtocolAbort ? signal.reason : abort('local_error', null, 'cancelled')
    if (timer.aborted) throw abort('timeout', ch.remote, `${ch.remote} sent no ${what} within ${Math.round(ms / 1000)} s`)
    throw abort('timeout', ch.remote, `${ch.remote} closed the stream before sending ${what}`)
  }
}

async function sendAbort(signer: Signer, ch: Channel, session: Uint8Array | null, info: AbortInfo): Promise<void> {
  try {
    await Promise.race([ch.send(encodeAbort(signer, session, info)), new Promise((r) => setTimeout(r, 1000))])
    await Promise.race([ch.close(), new Promise((r) => setTimeout(r, 500))])
  } catch {
    // gone already
  }
}

// ---- buyer -------------------------------------------------------------------------------------

export function createProposal(signer: Signer, query: Query, opts: { now: number; nonce?: Uint8Array }): SignedProposal {
  const t = query.timeouts
  const proposal: Proposal = {
    v: 1, protocols: PROTOCOLS, query,
    nonce: toHex(opts.nonce ?? new Uint8Array(randomBytes(32))),
    created: opts.now,
    // the whole run must fit: negotiation, computation, confirmation (negotiation.md §5)
    deadline: opts.now + (t.negotiate_s + t.compute_s + t.confirm_s) * 1000
  }
  const digest = proposalDigest(proposal)
  return { proposal, digest, sig: toHex(signer.sign(digest)) }
}

export async function negotiate(o: { signer: Signer; proposal: SignedProposal; channels: ReadonlyMap<string, Channel>; deps: NegotiationDeps; signal?: AbortSignal }): Promise<{ certificate: Certificate; params: SessionParams }> {
  const { signer, proposal } = o
  const q = proposal.proposal.query
  const digestHex = toHex(proposal.digest)
  const providers = q.participants.providers
  const emit = o.deps.events ?? (() => {})
  const sendAll = (f: Uint8Array): Promise<unknown> => Promise.all(providers.map((p) => (o.channels.get(p) as Channel).send(f)))
  for (const p of providers) if (!o.channels.has(p)) throw abort('local_error', null, `no channel to provider ${p}`)
  await sendAll(frame(NEG.proposal, { proposal: proposal.proposal, sig: proposal.sig }))
  const answers = await Promise.allSettled(providers.map(async (p) => {
    const ch = o.channels.get(p) as Channel
    const f = await receiveWithin(ch, q.timeouts.negotiate_s * 1000, 'answer', o.signal)
    const type = f[0] === NEG.reject ? NEG.reject : NEG.accept
    const m = decode(f, type, p)
    const { sig, ...body } = m
    const keys = type === NEG.accept ? ['v', 'type', 'proposal', 'provider', 'role', 'decision', 'ephemeral', 'sig'] : ['v', 'type', 'proposal', 'provider', 'role', 'decision', 'reasons', 'sig']
    for (const k of Object.keys(m)) if (!keys.includes(k)) throw abort('malformed_message', p, `unexpected field "${k}" in the answer`)
    if (m.v !== 1 || m.proposal !== digestHex) throw abort('wrong_session', p, 'the answer is bound to another proposal')
    if (m.provider !== p) throw abort('not_participant', p, `the answer names provider ${String(m.provider)}, not its sender`)
    if (m.role !== 'provider') throw abort('wrong_role', p, 'the answer does not come from the provider role')
    if (!sigOk(p, type === NEG.accept ? LABELS.accept : LABELS.reject, body, sig)) throw abort('bad_signature', p, 'the answer\'s signature does not verify')
    if (type === NEG.reject) {
      const reasons = Array.isArray(m.reasons) ? (m.reasons as unknown[]).slice(0, 50).map((r) => ({ code: String((r as Record<string, unknown>)?.code ?? 'unknown').slice(0, 64), message: String((r as Record<string, unknown>)?.message ?? '').slice(0, 300) })) : []
      emit({ type: 'decision', provider: p, decision: 'reject', reasons: reasons.map((r) => r.message) })
      return { kind: 'reject' as const, provider: p, reasons }
    }
    if (m.decision !== 'accept' || m.type !== 'accept' || typeof m.ephemeral !== 'string' || !/^[0-9a-f]{64}$/.test(m.ephemeral)) throw abort('malformed_message', p, 'malformed acceptance')
    emit({ type: 'decision', provider: p, decision: 'accept' })
    return { kind: 'accept' as const, provider: p, accept: m as unknown as SignedAccept }
  }))
  const fault = answers.find((a) => a.status === 'rejected')
  const silent = answers.map((a, i) => (a.status === 'rejected' && (a.reason as ProtocolAbort)?.reason === 'timeout' ? providers[i] : null)).filter((x): x is string => x != null)
  const rejections: Rejection[] = answers.flatMap((a) => (a.status === 'fulfilled' && a.value.kind === 'reject' ? [{ provider: a.value.provider, reasons: a.value.reasons }] : []))
  const accepted = answers.flatMap((a) => (a.status === 'fulfilled' && a.value.kind === 'accept' ? [a.value.accept] : []))
  const abortAccepters = async (info: AbortInfo): Promise<void> => {
    await Promise.all(providers.map((p) => sendAbort(signer, o.channels.get(p) as Channel, proposal.digest, info)))
  }
  if (rejections.length) {
    await abortAccepters({ reason: 'local_error', accused: null, detail: `proposal rejected by ${rejections.map((r) => r.provider).join(', ')}; nothing is computed` })
    throw new PolicyRejected(rejections)
  }
  if (fault) {
    const err = fault.reason instanceof ProtocolAbort ? fault.reason : abort('local_error', null, String(fault.reason))
    if (silent.length > 1) err.info.detail += ` (also silent: ${silent.slice(1).join(', ')})`
    await abortAccepters(err.info)
    throw err
  }
  // duplicate ephemeral keys would give two pairs the same masks (masked-sum.md §2)
  const seen = new Map<string, string>()
  for (const a of accepted) {
    const prev = seen.get(a.ephemeral)
    if (prev) {
      const err = abort('replay', a.provider, `${a.provider} sent the same ephemeral key as ${prev}`)
      await abortAccepters(err.info)
      throw err
    }
    seen.set(a.ephemeral, a.provider)
  }
  const body: CertificateBody = { proposal: { proposal: proposal.proposal, sig: proposal.sig }, acceptances: accepted }
  const session = certificateDigest(body)
  const certificate: Certificate = { body, buyer_sig: toHex(signer.sign(session)) }
  await sendAll(frame(NEG.certificate, certificate))
  return { certificate, params: paramsOf(certificate, q, session) }
}

// ---- provider ----------------------------------------------------------------------------------

export function verifyProposal(m: Record<string, unknown>, buyer: string, deps: NegotiationDeps): VerifiedProposal {
  const keys = Object.keys(m)
  if (keys.length !== 2 || !('proposal' in m) || !('sig' in m)) throw abort('malformed_message', buyer, 'a proposal message is {proposal, sig}')
  const p = m.proposal as Record<string, unknown>
  if (typeof p !== 'object' || p === null) throw abort('malformed_message', buyer, 'malformed proposal')
  for (const k of Object.keys(p)) if (!['v', 'protocols', 'query', 'nonce', 'created', 'deadline'].includes(k)) throw abort('malformed_message', buyer, `unexpected proposal field "${k}"`)
  const pr = p.protocols as Record<string, unknown> | null
  if (p.v !== 1 || typeof pr !== 'object' || pr === null || Object.keys(pr).length !== 2 || pr.negotiate !== PROTOCOLS.negotiate || pr.masked_sum !== PROTOCOLS.masked_sum) throw abort('wrong_session', buyer, 'the proposal names other protocol versions')
  if (typeof p.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(p.nonce)) throw abort('malformed_message', buyer, 'the proposal nonce must be 32 bytes of hex')
  if (typeof p.created !== 'number' || typeof p.deadline !== 'number' || !Number.isSafeInteger(p.created) || !Number.isSafeInteger(p.deadline)) throw abort('malformed_message', buyer, 'bad created/deadline')
  let query: Query
  try {
    query = deps.checkQuery(p.query)
  } catch (e) {
    throw abort('malformed_message', buyer, `invalid query: ${(e as Error).message}`)
  }
  const proposal = { ...(p as unknown as Proposal), query }
  const digest = proposalDigest(proposal)
  if (!sigOkRaw(buyer, digest, m.sig)) throw abort('bad_signature', buyer, 'the proposal is not signed by its sender')
  if (query.participants.buyer !== buyer) throw abort('wrong_role', buyer, `the proposal names buyer ${query.participants.buyer}, not its sender`)
  const now = deps.now()
  if (proposal.deadline + CLOCK_SKEW_MS < now) throw abort('expired', buyer, 'the proposal\'s deadline has passed')
  if (proposal.created - CLOCK_SKEW_MS > now) throw abort('expired', buyer, 'the proposal is dated in the future beyond the clock-skew allowance')
  return { proposal, digest, query, buyer }
}

function sigOkRaw(peer: string, digest: Uint8Array, sig: unknown): boolean {
  if (typeof sig !== 'string') return false
  try {
    return verifySignature(parsePeer(peer).publicKey, digest, fromHex(sig, 64))
  } catch {
    return false
  }
}

export async function respondToProposal(o: {
  signer: Signer
  channel: Channel
  deps: NegotiationDeps
  decide(p: VerifiedProposal): Promise<ProviderDecision>
  nonces: NonceStore
  signal?: AbortSignal
}): Promise<ProviderOutcome> {
  const { signer, channel: ch } = o
  const buyer = ch.remote
  let vp: VerifiedProposal | null = null
  let eph: { publicKey: Uint8Array; privateKey: Uint8Array } | null = null
  try {
    vp = verifyProposal(decode(await receiveWithin(ch, 30_000, 'proposal', o.signal), NEG.proposal, buyer), buyer, o.deps)
    const q = vp.query
    if (!q.participants.providers.includes(signer.peerId)) throw abort('not_participant', buyer, 'this agent is not a provider of the proposal')
    // replay defence: a nonce is recorded before deciding, so it is never answered twice
    if (o.nonces.has(vp.proposal.nonce)) throw abort('replay', buyer, 'this proposal\'s nonce was seen before')
    o.nonces.add(vp.proposal.nonce, vp.proposal.deadline + CLOCK_SKEW_MS)
    const digestHex = toHex(vp.digest)
    // while the operator or policy decides, keep listening: an ABORT from the buyer ends the wait
    const stop = new AbortController()
    const next = receiveWithin(ch, q.timeouts.negotiate_s * 1000 + CLOCK_SKEW_MS, 'certificate', AbortSignal.any([stop.signal, ...(o.signal ? [o.signal] : [])]))
    next.catch(() => {})
    const early = next.then((f) => decode(f, NEG.certificate, buyer)).then(() => {
      throw abort('malformed_message', buyer, 'the buyer sent a certificate before this provider answered')
    })
    early.catch(() => {})
    let decision: ProviderDecision
    try {
      decision = await Promise.race([o.decide(vp), early])
    } catch (e) {
      stop.abort()
      throw e
    }
    if (!decision.accept) {
      stop.abort()
      const body: RejectBody = { v: 1, type: 'reject', proposal: digestHex, provider: signer.peerId, role: 'provider', decision: 'reject', reasons: decision.reasons }
      await ch.send(frame(NEG.reject, { ...body, sig: toHex(signer.sign(statementDigest(LABELS.reject, body))) }))
      await ch.close()
      return { kind: 'rejected', proposal: vp, reasons: decision.reasons }
    }
    eph = ephemeralKeyPair()
    const body: AcceptBody = { v: 1, type: 'accept', proposal: digestHex, provider: signer.peerId, role: 'provider', decision: 'accept', ephemeral: toHex(eph.publicKey) }
    await ch.send(frame(NEG.accept, { ...body, sig: toHex(signer.sign(statementDigest(LABELS.accept, body))) }))
    const cm = decode(await next, NEG.certificate, buyer)
    const { params, certificate } = verifyCertificate(cm, o.deps, { proposal: vp.digest, self: signer.peerId, ephemeral: eph.publicKey, buyer })
    const key = eph.privateKey
    eph = null
    return { kind: 'certified', proposal: vp, certificate, params, ephemeralPrivateKey: key }
  } catch (e) {
    const err = e instanceof ProtocolAbort ? e : abort('local_error', null, (e as Error).message)
    if (!err.info.by) await sendAbort(signer, ch, vp?.digest ?? null, err.info)
    throw err
  } finally {
    if (eph) wipe(eph.privateKey)
  }
}

/** Check a certificate completely (negotiation.md §4.4); with `expect`, as the provider who accepted it. */
export function verifyCertificate(raw: unknown, deps: NegotiationDeps, expect?: { proposal: Uint8Array; self: string; ephemeral: Uint8Array; buyer: string }): { certificate: Certificate; params: SessionParams; proposal: VerifiedProposal } {
  const accuse = expect?.buyer ?? null
  const bad = (reason: AbortReason, detail: string): never => {
    throw abort(reason, accuse, detail, reason === 'replay' || reason === 'invalid_certificate' ? raw : undefined)
  }
  const c = raw as Certificate
  if (typeof c !== 'object' || c === null || typeof c.body !== 'object' || c.body === null || typeof c.buyer_sig !== 'string' || Object.keys(c).length !== 2) return bad('malformed_message', 'malformed certificate')
  const body = c.body
  if (Object.keys(body).length !== 2 || !Array.isArray(body.acceptances) || typeof body.proposal !== 'object' || body.proposal === null) return bad('malformed_message', 'malformed certificate body')
  const buyerClaimed = (body.proposal.proposal as Proposal | undefined)?.query?.participants?.buyer
  if (typeof buyerClaimed !== 'string') return bad('invalid_certificate', 'the certificate names no buyer')
  const vp = verifyProposal(body.proposal as unknown as Record<string, unknown>, buyerClaimed, deps)
  if (expect && !equalBytes(vp.digest, expect.proposal)) return bad('invalid_certificate', 'the certificate is for another proposal than the one accepted')
  if (expect && vp.buyer !== expect.buyer) return bad('wrong_role', 'the certificate comes from another buyer')
  const session = certificateDigest(body)
  if (!sigOkRaw(vp.buyer, session, c.buyer_sig)) return bad('bad_signature', 'the buyer\'s signature on the certificate does not verify')
  const providers = vp.query.participants.providers
  if (body.acceptances.length !== providers.length) return bad('invalid_certificate', `the certificate has ${body.acceptances.length} acceptances for ${providers.length} providers`)
  const keys = new Set<string>()
  body.acceptances.forEach((a, i) => {
    const p = providers[i] as string
    if (typeof a !== 'object' || a === null || a.provider !== p) bad('invalid_certificate', `acceptance ${i} is not ${p}'s (missing, extra or out of order)`)
    const { sig, ...ab } = a
    const fields = Object.keys(ab).sort().join(',')
    if (fields !== 'decision,ephemeral,proposal,provider,role,type,v' || ab.v !== 1 || ab.type !== 'accept' || ab.decision !== 'accept' || ab.role !== 'provider' || ab.proposal !== toHex(vp.digest)) bad('invalid_certificate', `acceptance of ${p} is malformed or for another proposal`)
    if (!sigOk(p, LABELS.accept, ab, sig)) bad('invalid_certificate', `acceptance of ${p} is not signed by ${p} (forged)`)
    if (typeof ab.ephemeral !== 'string' || !/^[0-9a-f]{64}$/.test(ab.ephemeral) || keys.has(ab.ephemeral)) bad('invalid_certificate', 'ephemeral keys must be 32 bytes and distinct')
    keys.add(ab.ephemeral)
    if (expect && p === expect.self && ab.ephemeral !== toHex(expect.ephemeral)) bad('replay', 'the certificate does not carry the ephemeral key this agent holds (replayed or altered)')
  })
  if (vp.proposal.deadline + CLOCK_SKEW_MS < deps.now()) return bad('expired', 'the certificate\'s deadline has passed')
  return { certificate: c, params: paramsOf(c, vp.query, session), proposal: vp }
}

/** For check 3: the session and proposal of a certificate a co-provider shows, and whether the buyer signed it. */
export function verifyCertificateSignature(raw: unknown): { session: Uint8Array; proposal: Uint8Array; buyer: string; buyerSigned: boolean } | null {
  const c = raw as Certificate
  const p = c?.body?.proposal?.proposal
  const buyer = p?.query?.participants?.buyer
  if (typeof buyer !== 'string' || typeof c.buyer_sig !== 'string') return null
  const session = certificateDigest(c.body)
  return { session, proposal: proposalDigest(p), buyer, buyerSigned: sigOkRaw(buyer, session, c.buyer_sig) }
}

function paramsOf(c: Certificate, q: Query, session: Uint8Array): SessionParams {
  const layout = layoutOf(q)
  const bounds = slotBounds(q, q.participants.providers.length)
  return {
    session,
    buyerSignature: fromHex(c.buyer_sig, 64),
    buyer: q.participants.buyer,
    providers: q.participants.providers,
    ephemeralKeys: new Map(c.body.acceptances.map((a) => [a.provider, fromHex(a.ephemeral, 32)])),
    length: layout.length,
    bounds,
    signed: layout.slots.map((s) => s.signed),
    outputProviders: q.output.filter((p) => p !== q.participants.buyer),
    timeouts: q.timeouts,
    deadline: c.body.proposal.proposal.deadline
  }
}
