// /mpc-agent/negotiate/2.0.0 (protocols/negotiation.md): the buyer proposes, every provider
// answers with a signed acceptance (carrying a fresh X25519 key) or a signed rejection, and the
// buyer assembles the agreement certificate. Pure protocol over Channels; policy, nonces and query
// validation are injected. Messages and checks: negotiation-messages.ts.
import { randomBytes } from 'node:crypto'
import { toHex, wipe } from '../crypto/bytes.ts'
import { statementDigest, type Signer } from '../crypto/sign.ts'
import { ephemeralKeyPair, type EphemeralKeyPair } from '../crypto/kdf.ts'
import type { Query } from '../query/types.ts'
import { encodeAbort } from './abort.ts'
import { certificateEvidence, settle } from './evidence.ts'
import { PolicyRejected, ProtocolAbort, type AbortInfo, type Rejection } from './errors.ts'
import { noEvents } from './events.ts'
import type { SessionParams } from './session.ts'
import type { Channel } from './transport.ts'
import { safeText } from './bounded-json.ts'
import {
  CLOCK_SKEW_MS, LABELS, NEG, PROTOCOLS, certificateDigest, decodeMessage, encodeMessage, negotiationAbort as fail,
  maxDeadlineSpan, paramsOf, proposalDigest, verifyAnswer, verifyCertificate, verifyProposal,
  type AcceptBody, type Answer, type Certificate, type CertificateBody, type NegotiationDeps, type Proposal,
  type Reason, type RejectBody, type SignedAccept, type SignedProposal, type VerifiedProposal
} from './negotiation-messages.ts'

export * from './negotiation-messages.ts'

/** A provider waits this long for the first message of an inbound stream (it knows no negotiate_s yet). */
export const PROPOSAL_WAIT_MS = 30_000

export interface ProviderDecision { accept: boolean; reasons: Reason[] }
export interface NonceStore { has(nonceHex: string): boolean; add(nonceHex: string, expiresAt: number): void }
export type ProviderOutcome =
  | { kind: 'rejected'; proposal: VerifiedProposal; reasons: Reason[] }
  | { kind: 'certified'; proposal: VerifiedProposal; certificate: Certificate; params: SessionParams; ephemeralPrivateKey: Uint8Array }

// ---- helpers -------------------------------------------------------------------------------------

function within<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(1, ms))
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/** A receive that failed: cancelled locally, or the remote closed / went silent. */
function receiveFailure(e: unknown, remote: string, what: string, signal?: AbortSignal): Error {
  if (e instanceof ProtocolAbort) return e
  if (signal?.aborted) return signal.reason instanceof ProtocolAbort ? signal.reason : fail('local_error', null, 'cancelled')
  return fail('timeout', remote, `${remote} closed the stream before sending ${what}`)
}

async function receiveWithin(ch: Channel, ms: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
  const stop = new AbortController()
  const sig = signal ? AbortSignal.any([stop.signal, signal]) : stop.signal
  try {
    return await within(ch.receive({ signal: sig }), ms, () => {
      stop.abort()
      return fail('timeout', ch.remote, `${ch.remote} sent no ${what} within ${Math.round(ms / 1000)} s`)
    })
  } catch (e) {
    throw receiveFailure(e, ch.remote, what, signal)
  }
}

/** Best effort: a signed ABORT, then close; never blocks a failing run for long. */
async function sendAbort(signer: Signer, ch: Channel, session: Uint8Array | null, info: AbortInfo): Promise<void> {
  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  try {
    await Promise.race([ch.send(encodeAbort(signer, session, ch.remote, info)), pause(1000)])
    await Promise.race([ch.close(), pause(500)])
  } catch {
    // gone already
  }
}

// ---- buyer (negotiation.md §4, steps 1 and 3) ----------------------------------------------------

/**
 * A signed proposal. deadline = now + (negotiate_s + compute_s + confirm_s)·1000 + CLOCK_SKEW_MS:
 * the whole run must fit, with one skew allowance for dialling and stream setup between phases
 * (negotiation.md §5.1).
 */
export function createProposal(signer: Signer, query: Query, opts: { now: number; nonce?: Uint8Array }): SignedProposal {
  const nonce = opts.nonce ?? new Uint8Array(randomBytes(32))
  if (nonce.length !== 32) throw new RangeError(`expected a nonce of 32 bytes, got length=${nonce.length}`)
  const proposal: Proposal = {
    v: 2, protocols: { ...PROTOCOLS }, query,
    nonce: toHex(nonce),
    created: opts.now,
    deadline: opts.now + maxDeadlineSpan(query)
  }
  const digest = proposalDigest(proposal)
  return { proposal, digest, sig: toHex(signer.sign(digest)) }
}

type Arrived = Answer & { order: number }

/** A provider's reasons as this buyer shows and records them: its free text on one safe line (no control or bidi characters). */
const shownReasons = (reasons: readonly Reason[]): Reason[] => reasons.map((r) => ({ code: safeText(r.code, 64), message: safeText(r.message) }))

/** Test-only deviations of a negotiating buyer (test/helpers/deviant.ts). */
export interface NegotiationHooks {
  /** Send the certificate to this provider? (false: withhold it, the framing attempt of issue 16) */
  sendCertificate?(provider: string): boolean
}

/** A runner's failure as this party may record it: only an accusation its evidence proves stays one. */
function settled(e: unknown, self: string, session: Uint8Array | null, deps: NegotiationDeps): unknown {
  if (!(e instanceof ProtocolAbort)) return e
  const info = settle(e.info, self, session, certificateEvidence(deps.checkQuery))
  return info === e.info ? e : new ProtocolAbort(info)
}

export interface NegotiateOptions {
  signer: Signer
  proposal: SignedProposal
  channels: ReadonlyMap<string, Channel>
  deps: NegotiationDeps
  signal?: AbortSignal
  hooks?: NegotiationHooks
}

export async function negotiate(o: NegotiateOptions): Promise<{ certificate: Certificate; params: SessionParams }> {
  try {
    return await negotiateAsBuyer(o)
  } catch (e) {
    throw settled(e, o.signer.peerId, o.proposal.digest, o.deps)
  }
}

async function negotiateAsBuyer(o: NegotiateOptions): Promise<{ certificate: Certificate; params: SessionParams }> {
  const { signer, proposal } = o
  const q = proposal.proposal.query
  const providers = q.participants.providers
  const emit = o.deps.events ?? noEvents
  try {
    o.deps.checkQuery(q)
  } catch (e) {
    throw fail('local_error', null, `the proposal's query is invalid: ${(e as Error).message}`)
  }
  if (q.participants.buyer !== signer.peerId) throw fail('local_error', null, `the query names buyer ${q.participants.buyer}, not this agent`)
  const chan = (p: string): Channel => {
    const ch = o.channels.get(p)
    if (!ch || ch.remote !== p) throw fail('local_error', null, `no channel authenticated to provider ${p}`)
    return ch
  }
  for (const p of providers) chan(p)

  // step 1: the proposal to every provider in parallel; step 3: every answer within negotiate_s
  const frame = encodeMessage(NEG.proposal, { proposal: proposal.proposal, sig: proposal.sig })
  const waitMs = q.timeouts.negotiate_s * 1000
  let arrival = 0
  const settled = await Promise.allSettled(providers.map(async (p): Promise<Arrived> => {
    const ch = chan(p)
    try {
      await ch.send(frame)
    } catch {
      throw fail('unreachable', p, `the stream to ${p} closed before the proposal was sent`)
    }
    const f = await receiveWithin(ch, waitMs, 'answer', o.signal)
    const { type, body } = decodeMessage(f, [NEG.accept, NEG.reject], p, 'provider', { self: signer.peerId, session: proposal.digest })
    const a = verifyAnswer(type, body, p, proposal.digest)
    emit(a.kind === 'accept'
      ? { type: 'decision', provider: p, decision: 'accept' }
      : { type: 'decision', provider: p, decision: 'reject', reasons: shownReasons(a.reject.reasons).map((r) => r.message) })
    return { ...a, order: arrival++ }
  }))
  const answers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const faults = settled.flatMap((s) => (s.status === 'rejected' ? [asAbort(s.reason)] : []))
  // who gets our ABORT: not a provider that rejected (it is done) nor one that aborted itself (§4.5)
  const done = new Set([
    ...answers.flatMap((a) => (a.kind === 'reject' ? [a.provider] : [])),
    ...faults.flatMap((f) => (f.reason === 'peer_abort' && f.info.by ? [f.info.by] : []))
  ])
  const abortOthers = async (info: AbortInfo): Promise<void> => {
    await Promise.all(providers.filter((p) => !done.has(p)).map((p) => sendAbort(signer, chan(p), proposal.digest, info)))
  }

  // any rejection: nobody computes; every rejecting provider is named with its reasons
  const rejections: Rejection[] = answers.flatMap((a) => (a.kind === 'reject' ? [{ provider: a.provider, reasons: shownReasons(a.reject.reasons) }] : []))
  if (rejections.length) {
    await abortOthers({ reason: 'local_error', accused: null, detail: `the proposal was rejected by ${rejections.map((r) => r.provider).join(', ')}; nothing is computed` })
    throw new PolicyRejected(rejections)
  }
  // a fault: a definite misbehaviour outranks silence; every silent provider is named
  if (faults.length) {
    const silent = faults.filter((f) => f.reason === 'timeout').map((f) => f.accused)
    const err = faults.find((f) => f.reason !== 'timeout') ?? (faults[0] as ProtocolAbort)
    const others = silent.filter((s) => s !== err.accused)
    if (others.length) err.info.detail += ` (also silent: ${others.join(', ')})`
    await abortOthers(err.info)
    throw err
  }
  // distinct ephemeral keys (masked-sum.md §3.1): the later arrival of a duplicate is accused
  const seen = new Map<string, string>()
  for (const a of [...answers].sort((x, y) => x.order - y.order)) {
    if (a.kind !== 'accept') continue
    const first = seen.get(a.accept.ephemeral)
    if (first) {
      // two signed acceptances with one key: either may have copied the other's, so a dispute between them
      const err = new ProtocolAbort({ reason: 'replay', accused: null, disputants: [first, a.provider], detail: `${a.provider} sent the same ephemeral key as ${first}` })
      await abortOthers(err.info)
      throw err
    }
    seen.set(a.accept.ephemeral, a.provider)
  }

  // the certificate: acceptances in canonical provider order; its digest is the session
  const byProvider = new Map(answers.map((a) => [a.provider, a]))
  const acceptances = providers.map((p) => (byProvider.get(p) as Arrived & { kind: 'accept' }).accept)
  const body: CertificateBody = { proposal: { proposal: proposal.proposal, sig: proposal.sig }, acceptances }
  const session = certificateDigest(body)
  const certificate: Certificate = { body, buyer_sig: toHex(signer.sign(session)) }
  const cframe = encodeMessage(NEG.certificate, certificate)
  const sent = await Promise.allSettled(providers.map((p) => (o.hooks?.sendCertificate?.(p) === false ? Promise.resolve() : chan(p).send(cframe))))
  const lost = sent.findIndex((s) => s.status === 'rejected')
  if (lost >= 0) {
    const p = providers[lost] as string
    const err = fail('unreachable', p, `the stream to ${p} closed before the certificate was sent`)
    await abortOthers(err.info)
    throw err
  }
  return { certificate, params: paramsOf(certificate, q, session) }
}

function asAbort(e: unknown): ProtocolAbort {
  return e instanceof ProtocolAbort ? e : fail('local_error', null, e instanceof Error ? e.message : String(e))
}

// ---- provider (negotiation.md §4, steps 2 and 4) -------------------------------------------------

export interface RespondOptions {
  signer: Signer
  channel: Channel
  deps: NegotiationDeps
  decide(p: VerifiedProposal): Promise<ProviderDecision>
  nonces: NonceStore
  signal?: AbortSignal
  onCertificate?(c: Certificate): void
}

export async function respondToProposal(o: RespondOptions): Promise<ProviderOutcome> {
  try {
    return await respondAsProvider(o)
  } catch (e) {
    throw settled(e, o.signer.peerId, null, o.deps)
  }
}

async function respondAsProvider(o: RespondOptions): Promise<ProviderOutcome> {
  const { signer, channel: ch } = o
  const buyer = ch.remote
  const self = signer.peerId
  let vp: VerifiedProposal | null = null
  /** The digest of the proposal as received, before it is verified: what our refusal binds to. */
  let received: Uint8Array | null = null
  let eph: EphemeralKeyPair | null = null
  const listen = new AbortController()
  try {
    const first = await receiveWithin(ch, PROPOSAL_WAIT_MS, 'proposal', o.signal)
    const pm = decodeMessage(first, [NEG.proposal], buyer, 'buyer', { self, session: null }).body
    try {
      received = statementDigest(LABELS.proposal, pm.proposal)
    } catch { /* not canonicalisable: our refusal binds to nothing */ }
    vp = verifyProposal(pm, buyer, o.deps) // §4.1
    const q = vp.query
    if (!q.participants.providers.includes(self)) throw fail('not_participant', buyer, `this agent (${self}) is not a provider of the proposal`)
    // §5.2: the nonce is stored only now, after every check that needs no decision passed (shape,
    // signature, sender, deadline window and bound, query, participation): a proposal that fails one
    // costs no store entry. And before deciding, so a replay is refused even while we decide.
    if (o.nonces.has(vp.proposal.nonce)) throw fail('replay', buyer, 'this proposal\'s nonce was answered before')
    o.nonces.add(vp.proposal.nonce, vp.proposal.deadline + CLOCK_SKEW_MS)
    const digestHex = toHex(vp.digest)
    const phaseMs = q.timeouts.negotiate_s * 1000 + CLOCK_SKEW_MS

    // while policy or operator decides, keep reading: the buyer's ABORT ends the wait (step 2)
    const pending = ch.receive({ signal: o.signal ? AbortSignal.any([listen.signal, o.signal]) : listen.signal })
    pending.catch(() => {})
    const early = pending.then(
      (f) => decodeMessage(f, [], buyer, 'buyer', { self, session: vp?.digest ?? null }) as never, // nothing is expected before our answer
      (e) => {
        if (listen.signal.aborted) return new Promise<never>(() => {})
        throw receiveFailure(e, buyer, 'a certificate', o.signal)
      }
    )
    early.catch(() => {})
    const decision = await within(Promise.race([o.decide(vp), early]), phaseMs, () =>
      fail('timeout', self, `this provider did not decide within negotiate_s (${q.timeouts.negotiate_s} s)`))

    if (!decision.accept) {
      listen.abort()
      const body: RejectBody = { v: 2, type: 'reject', proposal: digestHex, provider: self, role: 'provider', decision: 'reject', reasons: decision.reasons }
      await ch.send(encodeMessage(NEG.reject, { ...body, sig: toHex(signer.sign(statementDigest(LABELS.reject, body))) }))
      await ch.close()
      return { kind: 'rejected', proposal: vp, reasons: decision.reasons }
    }

    eph = ephemeralKeyPair() // fresh per run (masked-sum.md §3.1)
    const body: AcceptBody = { v: 2, type: 'accept', proposal: digestHex, provider: self, role: 'provider', decision: 'accept', ephemeral: toHex(eph.publicKey) }
    await ch.send(encodeMessage(NEG.accept, { ...body, sig: toHex(signer.sign(statementDigest(LABELS.accept, body))) }))

    // step 4: the certificate within negotiate_s (+ skew) of our answer, verified completely (§4.3)
    let f: Uint8Array
    try {
      f = await within(pending, phaseMs, () => {
        listen.abort()
        return fail('timeout', buyer, `${buyer} sent no certificate within ${Math.round(phaseMs / 1000)} s`)
      })
    } catch (e) {
      throw receiveFailure(e, buyer, 'a certificate', o.signal)
    }
    const cm = decodeMessage(f, [NEG.certificate], buyer, 'buyer', { self, session: vp.digest }).body
    const { certificate, params } = verifyCertificate(cm, o.deps, { proposal: vp.digest, self, ephemeral: eph.publicKey, buyer, verified: { proposal: vp, sig: pm.sig as string } })
    o.onCertificate?.(certificate)
    const key = eph.privateKey
    eph = null // handed over to the caller, who wipes it after the masked sum
    return { kind: 'certified', proposal: vp, certificate, params, ephemeralPrivateKey: key }
  } catch (e) {
    listen.abort()
    const err = asAbort(e)
    // the refusal binds to the proposal once we read one; before that it binds to nothing and proves nothing
    if (err.reason !== 'peer_abort') await sendAbort(signer, ch, vp?.digest ?? received, settle(err.info, self, null, certificateEvidence(o.deps.checkQuery)))
    throw err
  } finally {
    if (eph) wipe(eph.privateKey)
  }
}
