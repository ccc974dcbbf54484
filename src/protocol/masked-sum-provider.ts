// Provider side of /mpc-agent/masked-sum/4.0.0 (protocols/masked-sum.md §6): cross-check the
// certificate and pair keys with every co-provider (checks 3, 5), stream the double-masked vector
// to the buyer, sign its hash, check inclusion (check 7), and only then reveal the self-mask seed.
import { randomBytes } from 'node:crypto'
import { equalBytes, fromHex, toHex, wipe } from '../crypto/bytes.ts'
import type { KeyObject } from 'node:crypto'
import { confirmTag, pairKeys, x25519PrivateKey, KeyAgreementError, type PairKeys } from '../crypto/kdf.ts'
import { labelledHash } from '../crypto/hash.ts'
import { statementDigest, type Signer } from '../crypto/sign.ts'
import { ProtocolAbort, type AbortInfo } from './errors.ts'
import type { EventSink } from './events.ts'
import type { SessionParams } from './session.ts'
import type { Channel } from './transport.ts'
import { CHUNK_ELEMS, Masker } from './masks.ts'
import { RunContext, asAbort } from './run-context.ts'
import { CLOCK_SKEW_MS } from './negotiation-messages.ts'
import type { CertificateSummary } from './evidence.ts'
import {
  CANARIES, LABEL, MSG, allocChunk, decodeChunk, vectorHasher, decodeJson, encodeJson, shapes, signBody, signedBy, verifyBody, xcheckDigest,
  type DoneBody, type InclusionBody, type InclusionMsg, type ReceiptMsg, type RevealBody, type StartMsg, type XcertBody, type XcertMsg, type XcheckBody, type XcheckMsg
} from './masked-sum-messages.ts'

/** What a provider knows about a certificate it receives from a co-provider (injected by the agent). */
export type { CertificateSummary }

/** Test-only deviations (test/helpers/deviant.ts); production code never sets them. */
export interface ProviderHooks {
  confirmTag?(tag: Uint8Array, peer: string): Uint8Array
  /** Replace the frames sent for chunk `index` (drop, duplicate, reorder, resize). */
  chunkFrames?(index: number, frame: Uint8Array): Uint8Array[]
  /** Change masked values before they are hashed and sent. */
  mutateChunk?(index: number, offset: number, y: BigUint64Array): void
  revealSeed?(seed: Uint8Array): Uint8Array
  stallAt?: 'xcheck' | 'stream' | 'done' | 'reveal'
  zeroMasks?: boolean
  /** Abort at once with this (signed) claim, e.g. a false accusation of a co-provider (framing tests). */
  abortWith?(coProviders: string[]): AbortInfo
  /**
   * Check 3′ tests: name `session` in every XCHECK and follow it at once with a signed XCERT for
   * `xcertSession` (default `session`) carrying `certificate` — a claim the XCERT may not back;
   * `omitXcert`: send no XCERT at all (check 3″); `xcheckDigest`: name another XCHECK in it.
   */
  forgeXcheck?: { session: Uint8Array; xcertSession?: Uint8Array; certificate: unknown; omitXcert?: boolean; xcheckDigest?: string }
}

export interface ProviderRunOptions {
  signer: Signer
  params: SessionParams
  proposalDigest: Uint8Array
  /** The certificate as received (JSON), shown to co-providers as evidence for check 3. */
  certificate: unknown
  inspectCertificate(c: unknown): CertificateSummary | null
  ephemeralPrivateKey: Uint8Array
  /**
   * This provider's data vector x_i (params.length values); wiped by the runner. May still be
   * computing: it is first needed when streaming starts. A rejection must be a ProtocolAbort that
   * says nothing about the data (the agent maps local data errors to `local_error`).
   */
  vector: BigUint64Array | Promise<BigUint64Array>
  /** The buyer's stream; may arrive while the cross-checks already run. */
  buyer: Channel | Promise<Channel>
  /** One channel per co-provider, each possibly still being opened or routed. */
  peers: ReadonlyMap<string, Channel | Promise<Channel>>
  events?: EventSink
  signal?: AbortSignal
  hooks?: ProviderHooks
  /**
   * Called, and awaited, right before REVEAL is sent: from then on the buyer can hold the result, so
   * the agent records "self-mask seed revealed" durably first (masked-sum.md §9.2). If it throws, no
   * seed is revealed and the run aborts.
   */
  onReveal?(): void | Promise<void>
}

/** Where a provider's time went (bench/README.md, phase breakdown). */
export interface ProviderRunStats {
  /** Pair-key derivation and every cross-check (XCHECK both ways, key confirmation). */
  keyAgreementMs: number
  /** Time spent generating and applying masks (inside the streaming phase). */
  maskMs: number
  /** Time spent hashing the masked vector (inside the streaming phase). */
  hashMs: number
  /** From the first CHUNK handed to the transport to DONE sent. */
  streamMs: number
}

export interface ProviderRunResult {
  receipt: ReceiptMsg
  /** The decoded total, when this provider is an output recipient. */
  result?: BigUint64Array
  stats: ProviderRunStats
}

const never = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }))

export async function runProvider(o: ProviderRunOptions): Promise<ProviderRunResult> {
  const { params, signer, hooks = {} } = o
  const self = signer.peerId
  const session = params.session
  const sessionHex = toHex(session)
  const ctx = new RunContext(signer, session, o.signal, {
    buyer: params.buyer, evidence: { inspectCertificate: o.inspectCertificate }, deadline: params.deadline + CLOCK_SKEW_MS
  })
  const emit = o.events ?? (() => {})
  const total = params.length + CANARIES
  const keys = new Map<string, PairKeys>()
  const stats: ProviderRunStats = { keyAgreementMs: 0, maskMs: 0, hashMs: 0, streamMs: 0 }
  const vectorP = Promise.resolve(o.vector)
  vectorP.catch(() => {}) // observed below, or the run failed first
  let masker: Masker | null = null
  let seed: Uint8Array | null = null
  try {
    const t = params.timeouts
    const buyerP = ctx.adopt(Promise.resolve(o.buyer))
    const others = params.providers.filter((p) => p !== self)
    const peerPs = new Map<string, Promise<Channel>>()
    for (const p of others) {
      const c = o.peers.get(p)
      if (!c) throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `no channel to co-provider ${p}` })
      peerPs.set(p, ctx.adopt(Promise.resolve(c)))
    }
    if (hooks.abortWith) throw new ProtocolAbort(hooks.abortWith(others))

    // §6.1 START from the buyer (check 1, 2)
    // START is read now but judged after the cross-checks when it is wrong: if the buyer equivocated,
    // check 3 (with its evidence) is the finding every provider reports, not a bare session mismatch
    const startP = buyerP.then((b) => ctx.next(b, t.negotiate_s * 1000, 'START'))
    startP.catch(() => {})
    const checkStart = async (): Promise<Channel> => {
      const buyer = await buyerP
      const start = decodeJson<StartMsg>(await startP, MSG.start, buyer.remote, shapes.start)
      if (buyer.remote !== params.buyer) throw new ProtocolAbort({ reason: 'wrong_role', accused: buyer.remote, detail: `START from ${buyer.remote}, who is not the buyer` })
      if (start.type !== 'start' || start.session !== sessionHex) {
        // a dispute, not an accusation: a buyer's START for another of its runs proves no fault here
        throw new ProtocolAbort({ reason: 'wrong_session', accused: params.buyer, detail: `START is bound to session ${start.session.slice(0, 16)}…, not ${sessionHex.slice(0, 16)}…` })
      }
      if (!signedBy(start, LABEL.start, params.buyer, self, sessionHex)) {
        throw new ProtocolAbort({ reason: 'bad_signature', accused: params.buyer, detail: 'START is not signed by the buyer for this session and this provider' })
      }
      return buyer
    }

    // §6.1 key agreement and cross-check with each co-provider (checks 3, 5), concurrently with START
    // and with streaming: a cross-check failure fails the run, and no seed is revealed before every
    // cross-check passed (§6 step 4), so streaming early gives the buyer nothing (§9.2)
    emit({ type: 'phase', phase: 'crosscheck', state: 'start', at: Date.now() })
    const tKeys = performance.now()
    const esk = others.length ? x25519PrivateKey(o.ephemeralPrivateKey) : null // imported once for N − 1 secrets
    for (const p of others) {
      try {
        keys.set(p, pairKeys(session, esk as KeyObject, { peerId: self, ephemeralPublic: ephemeral(params, self) }, { peerId: p, ephemeralPublic: ephemeral(params, p) }))
      } catch (e) {
        if (e instanceof KeyAgreementError) throw new ProtocolAbort({ reason: 'key_confirmation_failed', accused: p, detail: e.message })
        throw e
      }
    }
    wipe(o.ephemeralPrivateKey)
    const crossChecked = Promise.all(others.map(async (p) => {
      const ch = await (peerPs.get(p) as Promise<Channel>)
      if (ch.remote !== p) throw new ProtocolAbort({ reason: 'not_participant', accused: ch.remote, detail: `${ch.remote} is not co-provider ${p}` })
      await crossCheck(ctx, o, ch, p, keys.get(p) as PairKeys, hooks)
    })).then(() => {
      stats.keyAgreementMs = performance.now() - tKeys
      for (const k of keys.values()) wipe(k.confirmKey)
      emit({ type: 'phase', phase: 'crosscheck', state: 'done', at: Date.now() })
    })
    crossChecked.catch((e: unknown) => ctx.fail(asAbort(e)))

    let buyer: Channel
    try {
      buyer = await checkStart()
    } catch (e) {
      await crossChecked.catch(() => {}) // a check-3 finding outranks the bare session mismatch
      throw ctx.failure ?? e
    }
    const vector = await ctx.race(vectorP)
    if (vector.length !== params.length) {
      throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `local vector has ${vector.length} values, the agreement needs ${params.length}` })
    }
    if (hooks.stallAt === 'stream') await never(ctx.signal)

    // §6.2 stream y_i = x_i + PRG(s_i) + Σ± m_ij in chunks, hashing as we go. Each chunk is filled
    // and masked in place inside its own CHUNK frame, which then goes to the transport uncopied.
    emit({ type: 'phase', phase: 'compute', state: 'start', at: Date.now() })
    const tStream = performance.now()
    seed = new Uint8Array(randomBytes(32))
    masker = new Masker(self, session, seed, others.map((p) => ({ peer: p, prgKey: (keys.get(p) as PairKeys).prgKey })), { zeroMasks: hooks.zeroMasks })
    for (const k of keys.values()) wipe(k.prgKey)
    const h = vectorHasher(session, self, total)
    let index = 0
    let bytes = 0
    for (let off = 0; off < total; off += CHUNK_ELEMS, index++) {
      const n = Math.min(CHUNK_ELEMS, total - off)
      const { frame, values: y } = allocChunk(index, off, n)
      if (off < params.length) y.set(vector.subarray(off, Math.min(params.length, off + n)))
      const t0 = performance.now()
      masker.mask(y)
      const t1 = performance.now()
      hooks.mutateChunk?.(index, off, y)
      h.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength))
      stats.maskMs += t1 - t0
      stats.hashMs += performance.now() - t1
      for (const f of hooks.chunkFrames ? hooks.chunkFrames(index, frame) : [frame]) await ctx.send(buyer, f, t.compute_s * 1000)
      bytes += frame.length
      emit({ type: 'progress', peer: params.buyer, cells: off + n, totalCells: total, bytes })
    }
    wipe(vector)
    const hash = new Uint8Array(h.digest())
    if (hooks.stallAt === 'done') await never(ctx.signal)
    const doneBody: DoneBody = { v: 4, type: 'done', session: sessionHex, provider: self, to: params.buyer, length: total, chunks: index, hash: toHex(hash) }
    await ctx.send(buyer, encodeJson(MSG.done, signBody(signer, LABEL.done, doneBody)))
    stats.streamMs = performance.now() - tStream
    emit({ type: 'phase', phase: 'compute', state: 'done', at: Date.now() })

    // §6.4 inclusion check (check 7), then reveal s_i. The wait outlasts the buyer's own wait for the
    // slowest provider (negotiate_s + compute_s), so a silent co-provider is accused by the buyer, not us.
    emit({ type: 'phase', phase: 'confirm', state: 'start', at: Date.now() })
    const inclusion = decodeJson<InclusionMsg>(await ctx.next(buyer, (t.negotiate_s + t.compute_s + t.confirm_s) * 1000, 'INCLUSION'), MSG.inclusion, params.buyer, shapes.inclusion)
    const inclusionDigest = checkInclusion(params, self, doneBody, inclusion, o.certificate)
    await crossChecked // §6 step 4: no seed before every co-provider confirmed the pair key
    if (hooks.stallAt === 'reveal') await never(ctx.signal)
    const shown = hooks.revealSeed ? hooks.revealSeed(seed) : seed
    await o.onReveal?.() // §9.2: the release is on record before it can happen
    const revealBody: RevealBody = { v: 4, type: 'reveal', session: sessionHex, provider: self, to: params.buyer, inclusion: toHex(inclusionDigest), seed: toHex(shown) }
    await ctx.send(buyer, encodeJson(MSG.reveal, signBody(signer, LABEL.reveal, revealBody)))
    wipe(seed)

    // §6.5 receipt (and the result, for output recipients)
    const receipt = decodeJson<ReceiptMsg>(await ctx.next(buyer, t.confirm_s * 1000, 'RECEIPT'), MSG.receipt, params.buyer, shapes.receipt, ['r', 'result'])
    const { sig: rsig, r, result: _unused, ...rbody } = receipt
    if (receipt.type !== 'receipt' || !signedBy({ ...rbody, sig: rsig }, LABEL.receipt, params.buyer, self, sessionHex)) {
      throw new ProtocolAbort({ reason: 'bad_signature', accused: params.buyer, detail: 'RECEIPT is not signed by the buyer for this session' })
    }
    let result: BigUint64Array | undefined
    if (params.outputProviders.includes(self)) {
      if (!r) throw new ProtocolAbort({ reason: 'malformed_message', accused: params.buyer, detail: 'RECEIPT for an output recipient carries no opening r' })
      result = new BigUint64Array(params.length)
      let off = 0
      for (let i = 0; off < params.length; i++) {
        const c = decodeChunk(await ctx.next(buyer, t.confirm_s * 1000, 'result CHUNK'), params.buyer)
        if (c.index !== i || c.offset !== off || c.values.length === 0 || c.values.length > CHUNK_ELEMS || off + c.values.length > params.length) {
          throw new ProtocolAbort({ reason: 'bad_vector', accused: params.buyer, detail: `result CHUNK ${c.index} out of order or out of range` })
        }
        result.set(c.values, off)
        off += c.values.length
      }
      const commitment = resultCommitment(fromHex(r, 32), result)
      if (!equalBytes(commitment, fromHex(receipt.commitment, 32))) {
        throw new ProtocolAbort({ reason: 'inclusion_mismatch', accused: params.buyer, detail: 'the result does not open the commitment the buyer signed', evidence: { receipt: rbody, sig: rsig } })
      }
    }
    emit({ type: 'phase', phase: 'confirm', state: 'done', at: Date.now() })
    await ctx.closeAll()
    ctx.end()
    return { receipt, result, stats }
  } catch (e) {
    ctx.fail(asAbort(e)) // settled: only an accusation its evidence proves stays one
    const err = ctx.failure as ProtocolAbort
    await ctx.abortAll(err.info)
    throw err
  } finally {
    masker?.destroy()
    if (seed) wipe(seed)
    wipe(o.ephemeralPrivateKey)
    void vectorP.then((v) => wipe(v), () => {}) // also when it arrives after the run ended
    for (const k of keys.values()) wipe(k.prgKey, k.confirmKey)
  }
}

function ephemeral(params: SessionParams, peer: string): Uint8Array {
  const k = params.ephemeralKeys.get(peer)
  if (!k) throw new ProtocolAbort({ reason: 'invalid_certificate', accused: params.buyer, detail: `the certificate has no ephemeral key for ${peer}` })
  return k
}


/** H(label, r, result LE bytes): the salted commitment in the receipt (§6.5). */
export function resultCommitment(r: Uint8Array, result: BigUint64Array): Uint8Array {
  return labelledHash(LABEL.result, r, new Uint8Array(result.buffer, result.byteOffset, result.byteLength))
}

async function crossCheck(ctx: RunContext, o: ProviderRunOptions, ch: Channel, peer: string, k: PairKeys, hooks: ProviderHooks): Promise<void> {
  const { params, signer } = o
  const self = signer.peerId
  const sessionHex = toHex(params.session)
  let tag = confirmTag(k.confirmKey, params.session, self, peer)
  if (hooks.confirmTag) tag = hooks.confirmTag(tag, peer)
  const forged = hooks.forgeXcheck
  const body: XcheckBody = { v: 4, type: 'xcheck', session: forged ? toHex(forged.session) : sessionHex, proposal: toHex(o.proposalDigest), confirm: toHex(tag), from: self, to: peer }
  // our XCERT names this XCHECK (4.0.0); computed only when an XCERT is sent, never in the common case
  const mine = (): string => xcheckDigest(body) as string
  if (hooks.stallAt !== 'xcheck') {
    await ctx.send(ch, encodeJson(MSG.xcheck, signBody(signer, LABEL.xcheck, body)))
    if (forged && !forged.omitXcert) {
      const xbody: XcertBody = { v: 4, type: 'xcert', session: toHex(forged.xcertSession ?? forged.session), xcheck: forged.xcheckDigest ?? mine(), certificate: forged.certificate, from: self, to: peer }
      await ctx.send(ch, encodeJson(MSG.xcert, signBody(signer, LABEL.xcert, xbody)))
    }
  }
  const waitMs = params.timeouts.negotiate_s * 1000
  const m = decodeJson<XcheckMsg>(await ctx.next(ch, waitMs, 'XCHECK'), MSG.xcheck, peer, shapes.xcheck)
  if (m.type !== 'xcheck') throw new ProtocolAbort({ reason: 'malformed_message', accused: peer, detail: 'expected XCHECK' })
  // signed by the peer, to us, for the session it names: transferable evidence for checks 3 and 3'
  if (!signedBy(m, LABEL.xcheck, peer, self, m.session)) throw new ProtocolAbort({ reason: 'bad_signature', accused: peer, detail: `${peer}'s XCHECK is not signed by it and addressed to us` })
  if (m.session !== sessionHex) {
    // the sessions differ, so the peer sees the mismatch too: each side shows its certificate (XCERT,
    // §5.1), the evidence for check 3. Certificates travel only here, never in the common case.
    const xbody: XcertBody = { v: 4, type: 'xcert', session: sessionHex, xcheck: mine(), certificate: o.certificate, from: self, to: peer }
    await ctx.send(ch, encodeJson(MSG.xcert, signBody(signer, LABEL.xcert, xbody)))
    const c = decodeJson<XcertMsg>(await ctx.next(ch, waitMs, 'XCERT'), MSG.xcert, peer, shapes.xcert)
    if (c.type !== 'xcert' || !signedBy(c, LABEL.xcert, peer, self, c.session)) throw new ProtocolAbort({ reason: 'bad_signature', accused: peer, detail: `${peer}'s XCERT is not signed by it and addressed to us` })
    const evidence = { kind: 'xcert', xcheck: m, xcert: c }
    // its XCERT must name the XCHECK it sent us (4.0.0); one naming another is no evidence of anything (a dispute)
    if (c.xcheck !== xcheckDigest(m)) throw new ProtocolAbort({ reason: 'malformed_message', accused: peer, detail: `${peer}'s XCERT does not name the XCHECK it sent us` })
    if (c.session !== m.session) throw new ProtocolAbort({ reason: 'malformed_message', accused: peer, detail: `${peer}'s XCERT is not for the session its XCHECK named`, evidence })
    // check 3: same proposal, two different buyer-signed certificates = the buyer equivocated
    const theirs = o.inspectCertificate(c.certificate)
    if (!theirs || toHex(theirs.session) !== m.session || !theirs.buyerSigned) {
      throw new ProtocolAbort({ reason: 'wrong_session', accused: peer, detail: `${peer} cross-checks a session ${m.session.slice(0, 16)}… it cannot show a buyer-signed certificate for`, evidence })
    }
    if (equalBytes(theirs.proposal, o.proposalDigest) && theirs.buyer === params.buyer) {
      throw new ProtocolAbort({
        reason: 'buyer_equivocation', accused: params.buyer,
        detail: `the buyer signed two different certificates for proposal ${toHex(o.proposalDigest).slice(0, 16)}… (ours ${sessionHex.slice(0, 16)}…, ${peer}'s ${m.session.slice(0, 16)}…)`,
        evidence: { kind: 'certificates', ours: o.certificate, theirs: c.certificate }
      })
    }
    if (toHex(theirs.proposal) !== m.proposal) {
      throw new ProtocolAbort({ reason: 'wrong_session', accused: peer, detail: `${peer}'s XCHECK names a proposal its certificate does not`, evidence })
    }
    throw new ProtocolAbort({ reason: 'wrong_session', accused: peer, detail: `${peer} cross-checks another run (session ${m.session.slice(0, 16)}…)` })
  }
  // check 5: the peer must prove it derived the same pair key (directional tag, peer → us)
  const expect = confirmTag(k.confirmKey, params.session, peer, self)
  if (!equalBytes(expect, fromHex(m.confirm, 32))) {
    throw new ProtocolAbort({ reason: 'key_confirmation_failed', accused: peer, detail: `${peer}'s key confirmation does not match the pair key agreed in the certificate` })
  }
}

/** Check 7: the buyer's signed list of summed vectors includes ours unchanged, and every entry verifies. */
function checkInclusion(params: SessionParams, self: string, mine: DoneBody, m: InclusionMsg, certificate: unknown): Uint8Array {
  const { sig: _sig, ...body } = m
  const accuse = (detail: string): never => {
    throw new ProtocolAbort({ reason: 'inclusion_mismatch', accused: params.buyer, detail, evidence: { kind: 'inclusion', inclusion: m, certificate } })
  }
  if (m.type !== 'inclusion' || m.session !== mine.session) {
    throw new ProtocolAbort({ reason: 'wrong_session', accused: params.buyer, detail: 'INCLUSION is bound to another session' })
  }
  if (!signedBy(m, LABEL.inclusion, params.buyer, self, mine.session)) {
    throw new ProtocolAbort({ reason: 'bad_signature', accused: params.buyer, detail: 'INCLUSION is not signed by the buyer and addressed to us' })
  }
  const entries = m.entries as unknown[]
  if (entries.length !== params.providers.length) accuse(`INCLUSION lists ${entries.length} vectors, the agreement has ${params.providers.length} providers`)
  entries.forEach((raw, i) => {
    const e = raw as Record<string, unknown>
    const p = params.providers[i] as string
    if (typeof e !== 'object' || e === null || e.provider !== p || typeof e.hash !== 'string' || typeof e.sig !== 'string' ||
      typeof e.length !== 'number' || typeof e.chunks !== 'number') accuse(`INCLUSION entry ${i} is not ${p}'s`)
    const done: DoneBody = { v: 4, type: 'done', session: mine.session, provider: p, to: params.buyer, length: e.length as number, chunks: e.chunks as number, hash: e.hash as string }
    if (!verifyBody(p, LABEL.done, done, e.sig as string)) accuse(`INCLUSION entry for ${p} does not carry ${p}'s signature`)
    if (p === self && (done.hash !== mine.hash || done.length !== mine.length || done.chunks !== mine.chunks)) accuse('INCLUSION does not contain our masked vector as we sent it')
  })
  return statementDigest(LABEL.inclusion, body)
}

export type { InclusionBody }
