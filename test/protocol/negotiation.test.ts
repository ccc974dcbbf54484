// Negotiation in one process over memory channels, real Ed25519 identities: the happy path and
// every refusal of protocols/negotiation.md §4.1–4.3.
import { describe, expect, it, beforeAll } from 'vitest'
import { x25519 } from '@noble/curves/ed25519.js'
import { memoryChannelPair, type Channel } from '../../src/protocol/transport.ts'
import {
  CLOCK_SKEW_MS, LABELS, NEG, certificateDigest, createProposal, encodeMessage, negotiate, proposalDigest, respondToProposal,
  sessionParamsFromCertificate, verifyCertificate, type Certificate, type NegotiationDeps, type NonceStore,
  type ProviderDecision, type ProviderOutcome, type SignedProposal, type VerifiedProposal
} from '../../src/protocol/negotiation.ts'
import { PolicyRejected, ProtocolAbort } from '../../src/protocol/errors.ts'
import type { ProtocolEvent } from '../../src/protocol/events.ts'
import { validateQuery } from '../../src/query/validate.ts'
import { layoutOf } from '../../src/query/layout.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { statementDigest } from '../../src/crypto/sign.ts'
import { fromHex, toHex } from '../../src/crypto/bytes.ts'
import type { Query } from '../../src/query/types.ts'
import { makeParties, makeParty, type Party } from '../helpers/parties.ts'

class MemNonces implements NonceStore {
  seen = new Set<string>()
  has(n: string): boolean { return this.seen.has(n) }
  add(n: string): void { this.seen.add(n) }
}

let buyer: Party
let providers: Party[]
let query: Query
const deps: NegotiationDeps = { checkQuery: (q: unknown) => validateQuery(q), now: () => Date.now() }
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function makeQuery(negotiate_s: number, ps = providers): Query {
  return validateQuery({
    version: 1, id: 'q', title: 't', dataset: 'trips', timezone: 'UTC', filter: null,
    group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }],
    aggregates: [{ name: 'n', kind: 'count' }, { name: 'f', kind: 'mean', column: 'fare', scale: 100, clip: [-5, 500] }],
    max_rows_per_provider: 1000,
    participants: { buyer: buyer.peerId, providers: ps.map((p) => p.peerId).sort(comparePeers) },
    min_providers: 3, output: [buyer.peerId, ps[0]?.peerId], timeouts: { negotiate_s, compute_s: 5, confirm_s: 2 }
  })
}

beforeAll(async () => {
  ;({ buyer, providers } = await makeParties(3))
  query = makeQuery(1)
})

type Settled<T> = PromiseSettledResult<T>
type ProviderRole = (ch: Channel) => Promise<unknown>
interface Opts {
  decide?: (i: number) => ProviderDecision | 'silent'
  proposal?: SignedProposal
  nonces?: MemNonces[]
  /** Rewrite frame n the buyer sends to provider i (n = 0: proposal, n = 1: certificate). */
  tamper?: (i: number, frame: Uint8Array, n: number) => Uint8Array
  /** Replace provider i by a hand-written (deviant) party. */
  fake?: (i: number) => ProviderRole | undefined
  events?: ProtocolEvent[]
}
interface RunResult {
  buyer: Settled<Awaited<ReturnType<typeof negotiate>>>
  providers: Array<Settled<unknown>>
  /** Type bytes the buyer sent to each provider. */
  sent: number[][]
  decided: number[]
  certificates: Certificate[][]
}

async function run(o: Opts = {}): Promise<RunResult> {
  const channels = new Map<string, Channel>()
  const sent: number[][] = providers.map(() => [])
  const decided: number[] = []
  const certificates: Certificate[][] = providers.map(() => [])
  const provs = providers.map((p, i) => {
    const [b, q] = memoryChannelPair(buyer.peerId, p.peerId)
    let n = 0
    channels.set(p.peerId, {
      ...b, remote: b.remote,
      send: (m) => {
        sent[i]?.push(m[0] as number)
        return b.send(o.tamper ? o.tamper(i, m, n++) : m)
      }
    })
    const fake = o.fake?.(i)
    if (fake) return fake(q)
    return respondToProposal({
      signer: p.signer, channel: q, deps, nonces: o.nonces?.[i] ?? new MemNonces(),
      decide: async () => {
        decided.push(i)
        const d = o.decide?.(i) ?? { accept: true, reasons: [] } // evaluated when the provider decides
        return d === 'silent' ? new Promise<ProviderDecision>(() => {}) : d
      },
      onCertificate: (c) => certificates[i]?.push(c)
    })
  })
  const proposal = o.proposal ?? createProposal(buyer.signer, query, { now: Date.now() })
  const events = o.events
  const bdeps = events ? { ...deps, events: (e: ProtocolEvent) => events.push(e) } : deps
  const [b, ...ps] = await Promise.allSettled([negotiate({ signer: buyer.signer, proposal, channels, deps: bdeps }), ...provs])
  return { buyer: b as RunResult['buyer'], providers: ps, sent, decided, certificates }
}

function abortOf(r: Settled<unknown> | undefined): ProtocolAbort {
  if (r?.status !== 'rejected') throw new Error(`expected a failure, got ${r?.status}`)
  if (!(r.reason instanceof ProtocolAbort)) throw r.reason as Error
  return r.reason
}
function thrown(f: () => unknown): ProtocolAbort {
  try {
    f()
  } catch (e) {
    if (e instanceof ProtocolAbort) return e
    throw e
  }
  throw new Error('expected a ProtocolAbort, nothing was thrown')
}
const reasonOf = (r: Settled<unknown> | undefined): string => abortOf(r).reason
/**
 * Whom an abort names: the accused, where its evidence proves the fault, else the other side of the
 * dispute (or the silent peer). Unattributable checks name a party without accusing it (issue 16).
 */
const blamed = (e: ProtocolAbort): string | null => e.accused ?? e.info.disputants?.[1] ?? null
/** What a respondToProposal promise ends with: its reason and whom it names. */
async function refusal(p: Promise<unknown>): Promise<[string, string | null]> {
  const e = await p.then(() => { throw new Error('expected a refusal') }, (x: unknown) => x)
  if (!(e instanceof ProtocolAbort)) throw e as Error
  return [e.reason, blamed(e)]
}
function certified(r: Settled<unknown> | undefined): ProviderOutcome & { kind: 'certified' } {
  if (r?.status !== 'fulfilled') throw r?.reason as Error
  const v = r.value as ProviderOutcome
  if (v.kind !== 'certified') throw new Error(`expected certified, got ${v.kind}`)
  return v
}

/** A deviant provider: answers the proposal with `body` (given the digest), signed by `p` under `label`. */
function answering(p: Party, body: (digestHex: string) => Record<string, unknown>, o: { type?: number; label?: string; delayMs?: number } = {}): ProviderRole {
  return async (ch) => {
    const f = await ch.receive()
    const m = JSON.parse(new TextDecoder().decode(f.subarray(1))) as { proposal: SignedProposal['proposal'] }
    const b = body(toHex(proposalDigest(m.proposal)))
    await sleep(o.delayMs ?? 0)
    await ch.send(encodeMessage(o.type ?? NEG.accept, { ...b, sig: toHex(p.signer.sign(statementDigest(o.label ?? LABELS.accept, b))) }))
    return await ch.receive().catch(() => null)
  }
}
const acceptBody = (p: Party, ephemeral: string) => (d: string) =>
  ({ v: 2, type: 'accept', proposal: d, provider: p.peerId, role: 'provider', decision: 'accept', ephemeral })

describe('negotiation: happy path', () => {
  it('1 buyer + 3 providers: identical certificate and SessionParams on every side', async () => {
    const events: ProtocolEvent[] = []
    const now = Date.now()
    const proposal = createProposal(buyer.signer, query, { now })
    const r = await run({ proposal, events })
    if (r.buyer.status !== 'fulfilled') throw r.buyer.reason as Error
    const { params, certificate } = r.buyer.value
    expect(params.providers).toEqual(query.participants.providers)
    expect(params.length).toBe(layoutOf(query).length)
    expect(params.signed).toEqual([false, true, false])
    expect(params.outputProviders).toEqual([providers[0]?.peerId])
    expect(params.deadline).toBe(now + (1 + 5 + 2) * 1000 + CLOCK_SKEW_MS)
    expect(toHex(params.session)).toBe(toHex(certificateDigest(certificate.body)))
    for (const [i, res] of r.providers.entries()) {
      const v = certified(res)
      expect(v.params).toEqual(params)
      expect(v.certificate).toEqual(certificate)
      expect(r.certificates[i]).toEqual([certificate])
      // the private key handed over belongs to the public key in the certificate
      expect(toHex(x25519.getPublicKey(v.ephemeralPrivateKey))).toBe(toHex(params.ephemeralKeys.get(providers[i]?.peerId as string) as Uint8Array))
    }
    expect(new Set([...params.ephemeralKeys.values()].map(toHex)).size).toBe(3)
    expect(sessionParamsFromCertificate(JSON.parse(JSON.stringify(certificate)) as Certificate, deps)).toEqual(params)
    expect(events.filter((e) => e.type === 'decision' && e.decision === 'accept')).toHaveLength(3)
  })
})

describe('negotiation: the buyer side (§4.2)', () => {
  it('one rejection: PolicyRejected with that provider and its reasons; no certificate is sent', async () => {
    const reasons = [{ code: 'column_denied', message: 'no license' }]
    const r = await run({ decide: (i) => (i === 1 ? { accept: false, reasons } : { accept: true, reasons: [] }) })
    const e = (r.buyer as PromiseRejectedResult).reason as PolicyRejected
    expect(e).toBeInstanceOf(PolicyRejected)
    expect(e.rejections).toEqual([{ provider: providers[1]?.peerId, reasons }])
    expect(r.sent.flat()).not.toContain(NEG.certificate)
    expect(r.providers[1]?.status === 'fulfilled' && (r.providers[1].value as ProviderOutcome).kind).toBe('rejected')
    for (const i of [0, 2]) {
      expect(reasonOf(r.providers[i])).toBe('peer_abort') // told to stop, never certified
      expect(abortOf(r.providers[i]).info.by).toBe(buyer.peerId)
    }
  })

  it('a rejection\'s free text reaches the buyer on one safe line: control and bidi characters become "?"', async () => {
    const reasons = [{ code: 'x\u001b[2J', message: 'line\nbreak \u001b[31mred\u001b[0m \u202eevil\u2066' }]
    const r = await run({ decide: (i) => (i === 1 ? { accept: false, reasons } : { accept: true, reasons: [] }) })
    const e = (r.buyer as PromiseRejectedResult).reason as PolicyRejected
    expect(e.rejections[0]?.reasons).toEqual([{ code: 'x?[2J', message: 'line?break ?[31mred?[0m ?evil?' }])
    expect(e.message).not.toMatch(/[\u0000-\u001f\u202e\u2066]/)
  })

  it('two rejections: every rejecting provider is listed with its reasons', async () => {
    const r = await run({ decide: (i) => (i === 1 ? { accept: true, reasons: [] } : { accept: false, reasons: [{ code: `c${i}`, message: `m${i}` }] }) })
    const e = (r.buyer as PromiseRejectedResult).reason as PolicyRejected
    expect(e.rejections.map((x) => [x.provider, x.reasons[0]?.code])).toEqual([[providers[0]?.peerId, 'c0'], [providers[2]?.peerId, 'c2']])
  })

  it('silence: timeout accusing the silent provider; every silent one is named', async () => {
    const r = await run({ decide: (i) => (i === 0 ? { accept: true, reasons: [] } : 'silent') })
    const e = abortOf(r.buyer)
    // silence is not attributable: "no answer from providers[1] (as seen by the buyer)"
    expect([e.reason, e.accused, e.info.disputants]).toEqual(['timeout', null, [buyer.peerId, providers[1]?.peerId]])
    expect(e.info.detail).toContain(providers[2]?.peerId)
    expect(r.sent.flat()).not.toContain(NEG.certificate)
    for (const p of r.providers) expect(reasonOf(p)).toBe('peer_abort') // the abort ends their wait
  })

  it('a provider that aborts: peer_abort naming it; the buyer stops the others at once', async () => {
    // the proposal to provider 0 is damaged on the way (its signature no longer verifies)
    const r = await run({ tamper: (i, f, n) => (i === 0 && n === 0 ? f.map((b, k) => (k === f.length - 3 ? (b === 0x61 ? 0x62 : 0x61) : b)) : f) })
    expect(reasonOf(r.providers[0])).toBe('bad_signature')
    const e = abortOf(r.buyer)
    // a relay accusing nobody, with provider 0's signed abort as its cause: a dispute with the buyer
    // (an unverifiable signature proves nothing to a third party)
    expect([e.reason, e.info.by, e.accused]).toEqual(['peer_abort', providers[0]?.peerId, null])
    const cause = e.info.cause as { by: string; reason: string; accused: string | null; disputants: string[] }
    expect([cause.by, cause.reason, cause.accused, cause.disputants]).toEqual([providers[0]?.peerId, 'bad_signature', null, [providers[0]?.peerId, buyer.peerId]])
    expect(e.info.detail).toContain('bad_signature')
    for (const i of [1, 2]) expect([reasonOf(r.providers[i]), abortOf(r.providers[i]).info.by]).toEqual(['peer_abort', buyer.peerId])
    expect(r.sent[0]).toEqual([NEG.proposal]) // no ABORT answered to an ABORT
  })

  it('duplicate ephemeral keys: a dispute between the two providers (either may have copied the other)', async () => {
    const key = toHex(x25519.getPublicKey(x25519.utils.randomSecretKey()))
    const r = await run({
      fake: (i) => (i === 0 ? undefined : answering(providers[i] as Party, acceptBody(providers[i] as Party, key), { delayMs: i === 1 ? 50 : 0 }))
    })
    const e = abortOf(r.buyer)
    expect([e.reason, e.accused, e.info.disputants]).toEqual(['replay', null, [providers[2]?.peerId, providers[1]?.peerId]])
    expect(r.sent.flat()).not.toContain(NEG.certificate)
  })

  it.each([
    ['names another provider', (p: Party) => answering(p, (d) => ({ ...acceptBody(p, 'ab'.repeat(32))(d), provider: providers[0]?.peerId })), 'not_participant'],
    ['is bound to another proposal', (p: Party) => answering(p, () => acceptBody(p, 'ab'.repeat(32))('00'.repeat(32))), 'wrong_session'],
    ['claims the buyer role', (p: Party) => answering(p, (d) => ({ ...acceptBody(p, 'ab'.repeat(32))(d), role: 'buyer' })), 'wrong_role'],
    ['is signed under the wrong label', (p: Party) => answering(p, acceptBody(p, 'ab'.repeat(32)), { label: LABELS.reject }), 'bad_signature'],
    ['has a short ephemeral key', (p: Party) => answering(p, acceptBody(p, 'ab'.repeat(31))), 'malformed_message'],
    // low-order X25519 points (RFC 7748 §6.1; libsodium's blocklist): every key agreement with them is all zero
    ['has a low-order ephemeral key (u = 0)', (p: Party) => answering(p, acceptBody(p, '00'.repeat(32))), 'malformed_message'],
    ['has a low-order ephemeral key (u = 1)', (p: Party) => answering(p, acceptBody(p, '01' + '00'.repeat(31))), 'malformed_message'],
    ['has a low-order ephemeral key (order 8)', (p: Party) => answering(p, acceptBody(p, 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')), 'malformed_message'],
    ['has a low-order ephemeral key (u = p − 1)', (p: Party) => answering(p, acceptBody(p, 'ec' + 'ff'.repeat(30) + '7f')), 'malformed_message'],
    ['carries an extra field', (p: Party) => answering(p, (d) => ({ ...acceptBody(p, 'ab'.repeat(32))(d), x: 1 })), 'malformed_message'],
    ['is a rejection without reasons', (p: Party) => answering(p, (d) => ({ v: 2, type: 'reject', proposal: d, provider: p.peerId, role: 'provider', decision: 'reject', reasons: [] }), { type: NEG.reject, label: LABELS.reject }), 'malformed_message'],
    ['is a PROPOSAL (a provider acting as buyer)', (p: Party) => answering(p, acceptBody(p, 'ab'.repeat(32)), { type: NEG.proposal }), 'wrong_role']
  ])('an answer that %s: abort naming that provider (a dispute), broadcast to the others', async (_n, mk, reason) => {
    const r = await run({ fake: (i) => (i === 2 ? mk(providers[2] as Party) : undefined) })
    const e = abortOf(r.buyer)
    expect([e.reason, e.accused, e.info.disputants]).toEqual([reason, null, [buyer.peerId, providers[2]?.peerId]])
    for (const i of [0, 1]) expect(reasonOf(r.providers[i])).toBe('peer_abort')
    expect(r.sent.flat()).not.toContain(NEG.certificate)
  })
})

describe('negotiation: proposal checks (§4.1)', () => {
  it('a proposal altered after signing is refused (bad_signature) before any decision', async () => {
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    const r = await run({ proposal: { ...p, proposal: { ...p.proposal, query: { ...p.proposal.query, title: 'other' } } } })
    for (const x of r.providers) expect([reasonOf(x), blamed(abortOf(x))]).toEqual(['bad_signature', buyer.peerId])
    expect(r.decided).toEqual([])
    expect(reasonOf(r.buyer)).toBe('peer_abort')
  })

  it('an expired proposal, or one dated in the future beyond the skew, is refused (expired)', async () => {
    const old = await run({ proposal: createProposal(buyer.signer, query, { now: Date.now() - 3_600_000 }) })
    for (const x of old.providers) expect(reasonOf(x)).toBe('expired')
    const future = await run({ proposal: createProposal(buyer.signer, query, { now: Date.now() + 2 * CLOCK_SKEW_MS }) })
    for (const x of future.providers) expect(reasonOf(x)).toBe('expired')
    // inside the allowance: accepted
    const skewed = await run({ proposal: createProposal(buyer.signer, query, { now: Date.now() + CLOCK_SKEW_MS / 2 }) })
    expect(skewed.buyer.status).toBe('fulfilled')
  })

  it('a replayed proposal (same nonce) is refused (replay); the nonce is stored before the decision', async () => {
    const nonces = providers.map(() => new MemNonces())
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    const first = await run({ proposal: p, nonces, decide: (i) => {
      expect(nonces[i]?.has(p.proposal.nonce)).toBe(true)
      return { accept: true, reasons: [] }
    } })
    expect(first.buyer.status).toBe('fulfilled')
    const again = await run({ proposal: p, nonces })
    for (const x of again.providers) expect(reasonOf(x)).toBe('replay')
    expect(again.decided).toEqual([])
  })

  it('a deadline beyond created + the query\'s timeouts + skew is refused before its nonce is stored (§5.1, issue 16)', async () => {
    const nonces = providers.map(() => new MemNonces())
    const ok = createProposal(buyer.signer, query, { now: Date.now() })
    // exactly what createProposal sets is the bound; one ms more is refused
    expect(ok.proposal.deadline - ok.proposal.created).toBe((1 + 5 + 2) * 1000 + CLOCK_SKEW_MS)
    const far = { ...ok.proposal, deadline: ok.proposal.deadline + 1 }
    const digest = proposalDigest(far)
    const r = await run({ proposal: { proposal: far, digest, sig: toHex(buyer.signer.sign(digest)) }, nonces })
    for (const x of r.providers) {
      // not attributable (§4.1): the provider's reading of the buyer's stream, a dispute with the buyer
      expect(abortOf(x).info).toMatchObject({ reason: 'malformed_message', accused: null })
      expect(abortOf(x).info.disputants).toContain(buyer.peerId)
      expect(abortOf(x).info.detail).toMatch(/beyond created/)
    }
    expect(r.decided).toEqual([])
    for (const n of nonces) expect(n.seen.size).toBe(0)
    // a proposal failing any other cheap check (here: a forged signature) costs no store entry either
    const forged = await run({ proposal: { ...ok, sig: toHex(providers[0]!.signer.sign(ok.digest)) }, nonces })
    for (const x of forged.providers) expect(reasonOf(x)).toBe('bad_signature')
    for (const n of nonces) expect(n.seen.size).toBe(0)
  })

  it('a proposal signed by a provider (wrong role) is refused', async () => {
    const [b, q] = memoryChannelPair(providers[1]?.peerId as string, providers[0]?.peerId as string)
    const p = createProposal(providers[1]?.signer as Party['signer'], query, { now: Date.now() })
    await b.send(encodeMessage(NEG.proposal, { proposal: p.proposal, sig: p.sig }))
    expect(await refusal(respondToProposal({ signer: providers[0]?.signer as Party['signer'], channel: q, deps, nonces: new MemNonces(), decide: async () => ({ accept: true, reasons: [] }) })))
      .toEqual(['wrong_role', providers[1]?.peerId])
  })

  it('an agent that is not among the providers refuses (not_participant)', async () => {
    const outsider = await makeParty()
    const [b, q] = memoryChannelPair(buyer.peerId, outsider.peerId)
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    await b.send(encodeMessage(NEG.proposal, { proposal: p.proposal, sig: p.sig }))
    expect(await refusal(respondToProposal({ signer: outsider.signer, channel: q, deps, nonces: new MemNonces(), decide: async () => ({ accept: true, reasons: [] }) })))
      .toEqual(['not_participant', buyer.peerId])
  })

  it.each([
    ['nests too deep', () => new TextEncoder().encode('{"a":' + '['.repeat(100) + ']'.repeat(100) + '}')],
    ['is not JSON', () => new TextEncoder().encode('{nope')],
    ['has a non-canonical query', () => {
      const p = createProposal(buyer.signer, query, { now: Date.now() })
      const bad = { ...p.proposal, query: { ...p.proposal.query, participants: { ...p.proposal.query.participants, providers: [...p.proposal.query.participants.providers].reverse() } } }
      return new TextEncoder().encode(JSON.stringify({ proposal: bad, sig: toHex(buyer.signer.sign(proposalDigest(bad))) }))
    }]
  ])('a proposal that %s is refused (malformed_message)', async (_n, body) => {
    const [b, q] = memoryChannelPair(buyer.peerId, providers[0]?.peerId as string)
    await b.send(new Uint8Array([NEG.proposal, ...body()]))
    expect(await refusal(respondToProposal({ signer: providers[0]?.signer as Party['signer'], channel: q, deps, nonces: new MemNonces(), decide: async () => ({ accept: true, reasons: [] }) })))
      .toEqual(['malformed_message', buyer.peerId])
  })
})

describe('negotiation: certificate checks (§4.3)', () => {
  /** A deviant buyer: rewrites the certificate to provider 0 and (unless told not to) re-signs it. */
  const certTamper = (f: (c: Certificate) => void, resign = true) => (i: number, frame: Uint8Array, n: number): Uint8Array => {
    if (n !== 1 || i !== 0) return frame
    const c = JSON.parse(new TextDecoder().decode(frame.subarray(1))) as Certificate
    f(c)
    if (resign) c.buyer_sig = toHex(buyer.signer.sign(certificateDigest(c.body)))
    return new Uint8Array([frame[0] as number, ...new TextEncoder().encode(JSON.stringify(c))])
  }
  const resignAccept = (c: Certificate, k: number): void => {
    const a = c.body.acceptances[k]
    if (!a) throw new Error('no acceptance')
    const { sig: _s, ...body } = a
    a.sig = toHex((providers[k] as Party).signer.sign(statementDigest(LABELS.accept, body)))
  }
  const own = (c: Certificate) => c.body.acceptances[0] as Certificate['body']['acceptances'][number]

  it.each([
    ['a forged acceptance', (c: Certificate) => { const a = c.body.acceptances[1]; if (a) a.sig = (a.sig.startsWith('00') ? '11' : '00') + a.sig.slice(2) }, 'invalid_certificate'],
    ['a missing acceptance', (c: Certificate) => { c.body.acceptances.pop() }, 'invalid_certificate'],
    ['an extra acceptance', (c: Certificate) => { c.body.acceptances.push(c.body.acceptances[2] as never) }, 'invalid_certificate'],
    ['a duplicated acceptance in place of another', (c: Certificate) => { c.body.acceptances[2] = c.body.acceptances[1] as never }, 'invalid_certificate'],
    ['acceptances out of canonical order', (c: Certificate) => { c.body.acceptances.reverse() }, 'invalid_certificate'],
    ['two providers with the same (validly signed) ephemeral key', (c: Certificate) => {
      const [, a1, a2] = c.body.acceptances
      if (a1 && a2) a2.ephemeral = a1.ephemeral
      resignAccept(c, 2)
    }, 'invalid_certificate'],
    ['a swapped ephemeral key for this provider', (c: Certificate) => { own(c).ephemeral = 'ab'.repeat(32) }, 'replay'],
    ['another proposal embedded', (c: Certificate) => { c.body.proposal.proposal.deadline += 1 }, 'invalid_certificate'],
    ['an added field', (c: Certificate) => { (c.body as unknown as Record<string, unknown>).extra = 1 }, 'malformed_message'],
    ['a buyer signature over something else', (c: Certificate) => { c.buyer_sig = toHex(buyer.signer.sign(new Uint8Array(32))) }, 'bad_signature']
  ])('a certificate with %s is refused, accusing the buyer (proven by the certificate it signed; a bad buyer signature only a dispute)', async (_n, f, reason) => {
    const r = await run({ tamper: certTamper(f, reason !== 'bad_signature') })
    expect(r.buyer.status).toBe('fulfilled') // the deviant buyer itself finished
    const e = abortOf(r.providers[0])
    if (reason === 'bad_signature') expect([e.reason, e.accused, e.info.disputants]).toEqual([reason, null, [providers[0]?.peerId, buyer.peerId]])
    else expect([e.reason, e.accused, e.info.proven !== undefined]).toEqual([reason, buyer.peerId, true])
    expect(r.certificates[0]).toEqual([])
    certified(r.providers[1])
  })

  it('a validly signed certificate from an earlier run does not carry the key this provider holds (replay)', async () => {
    const r = await run()
    if (r.buyer.status !== 'fulfilled') throw r.buyer.reason as Error
    const v = certified(r.providers[0])
    const expect0 = { proposal: v.proposal.digest, self: providers[0]?.peerId as string, buyer: buyer.peerId }
    const cert = r.buyer.value.certificate
    expect(verifyCertificate(cert, deps, { ...expect0, ephemeral: v.params.ephemeralKeys.get(expect0.self) as Uint8Array }).params).toEqual(v.params)
    const e = thrown(() => verifyCertificate(cert, deps, { ...expect0, ephemeral: x25519.getPublicKey(x25519.utils.randomSecretKey()) }))
    expect([e.reason, e.accused]).toEqual(['replay', buyer.peerId])
  })

  it('a certificate past its deadline is refused (expired)', async () => {
    const r = await run()
    if (r.buyer.status !== 'fulfilled') throw r.buyer.reason as Error
    const c = r.buyer.value.certificate
    const late = { ...deps, now: () => c.body.proposal.proposal.deadline + CLOCK_SKEW_MS + 1 }
    expect(thrown(() => verifyCertificate(c, late)).reason).toBe('expired')
    expect(verifyCertificate(c, { ...deps, now: () => c.body.proposal.proposal.deadline + CLOCK_SKEW_MS }).params.session).toEqual(r.buyer.value.params.session)
  })

  it('the accepted proposal is not verified twice, but an embedded one with another signature is, and the deadline always is (§4.3, issue 20)', async () => {
    const r = await run()
    if (r.buyer.status !== 'fulfilled') throw r.buyer.reason as Error
    const v = certified(r.providers[0])
    const cert = r.buyer.value.certificate
    const self = providers[0]?.peerId as string
    const expect0 = { proposal: v.proposal.digest, self, buyer: buyer.peerId, ephemeral: v.params.ephemeralKeys.get(self) as Uint8Array }
    const verified = { proposal: v.proposal, sig: cert.body.proposal.sig }
    // a query validator that would refuse: it is not consulted for the proposal this provider verified already
    const refusing = { ...deps, checkQuery: (): never => { throw new Error('validated again') } }
    expect(verifyCertificate(cert, refusing, { ...expect0, verified }).params).toEqual(v.params)
    expect(thrown(() => verifyCertificate(cert, refusing, expect0)).info.detail).toContain('validated again')
    // the same proposal under another signature is verified in full (and refused)
    const other = structuredClone(cert)
    other.body.proposal.sig = (other.body.proposal.sig.startsWith('00') ? '11' : '00') + other.body.proposal.sig.slice(2)
    other.buyer_sig = toHex(buyer.signer.sign(certificateDigest(other.body)))
    expect(thrown(() => verifyCertificate(other, deps, { ...expect0, verified })).reason).toBe('bad_signature')
    // the deadline depends on the time: checked again
    const late = { ...deps, now: () => cert.body.proposal.proposal.deadline + CLOCK_SKEW_MS + 1 }
    expect(thrown(() => verifyCertificate(cert, late, { ...expect0, verified })).reason).toBe('expired')
  })

  it('the buyer aborting while the provider decides ends the provider with peer_abort', async () => {
    const [b, q] = memoryChannelPair(buyer.peerId, providers[0]?.peerId as string)
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    await b.send(encodeMessage(NEG.proposal, { proposal: p.proposal, sig: p.sig }))
    const { encodeAbort } = await import('../../src/protocol/abort.ts')
    let seen: VerifiedProposal | null = null
    const res = respondToProposal({
      signer: providers[0]?.signer as Party['signer'], channel: q, deps, nonces: new MemNonces(),
      decide: async (vp) => {
        seen = vp
        await b.send(encodeAbort(buyer.signer, p.digest, providers[0]?.peerId as string, { reason: 'local_error', accused: null, detail: 'changed my mind' }))
        return new Promise<ProviderDecision>(() => {})
      }
    })
    await expect(res).rejects.toMatchObject({ info: { reason: 'peer_abort', by: buyer.peerId } })
    expect(toHex((seen as VerifiedProposal | null)?.digest ?? new Uint8Array())).toBe(toHex(p.digest))
    expect(fromHex(toHex(p.digest), 32)).toEqual(p.digest)
  })
})
