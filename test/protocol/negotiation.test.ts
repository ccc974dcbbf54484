// Negotiation in one process over memory channels: the happy path and every refusal of §4.
import { describe, expect, it, beforeAll } from 'vitest'
import { memoryChannelPair, type Channel } from '../../src/protocol/transport.ts'
import { certificateDigest, createProposal, negotiate, respondToProposal, verifyCertificate, type Certificate, type NonceStore, type ProviderDecision, type SignedProposal } from '../../src/protocol/negotiation.ts'
import { PolicyRejected, ProtocolAbort } from '../../src/protocol/errors.ts'
import { validateQuery } from '../../src/query/validate.ts'
import { comparePeers } from '../../src/crypto/peer.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import type { Query } from '../../src/query/types.ts'
import { makeParties, type Party } from '../helpers/parties.ts'

class MemNonces implements NonceStore {
  seen = new Set<string>()
  has(n: string): boolean { return this.seen.has(n) }
  add(n: string): void { this.seen.add(n) }
}

let buyer: Party
let providers: Party[]
let query: Query
const deps = { checkQuery: (q: unknown) => validateQuery(q), now: () => Date.now() }

beforeAll(async () => {
  ;({ buyer, providers } = await makeParties(3))
  query = validateQuery({
    version: 1, id: 'q', title: 't', dataset: 'trips', timezone: 'UTC', filter: null,
    group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 'ts' } }],
    aggregates: [{ name: 'n', kind: 'count' }], out_of_domain: 'drop', max_rows_per_provider: 1000,
    participants: { buyer: buyer.peerId, providers: providers.map((p) => p.peerId).sort(comparePeers) },
    min_providers: 3, output: [buyer.peerId], timeouts: { negotiate_s: 2, compute_s: 5, confirm_s: 2 }
  })
})

interface Opts {
  decide?: (i: number) => ProviderDecision | 'silent'
  proposal?: SignedProposal
  nonces?: MemNonces[]
  /** Tamper with the first frame (the proposal) or the certificate frame on its way to provider i. */
  tamper?: (i: number, frame: Uint8Array, n: number) => Uint8Array
}

async function run(o: Opts = {}): Promise<{ buyer: PromiseSettledResult<Awaited<ReturnType<typeof negotiate>>>; providers: Array<PromiseSettledResult<Awaited<ReturnType<typeof respondToProposal>>>> }> {
  const channels = new Map<string, Channel>()
  const provs = providers.map((p, i) => {
    const [b, q] = memoryChannelPair(buyer.peerId, p.peerId)
    let n = 0
    const tampered: Channel = o.tamper ? { ...b, remote: b.remote, send: (m) => b.send((o.tamper as NonNullable<Opts['tamper']>)(i, m, n++)) } : b
    channels.set(p.peerId, tampered)
    const d = o.decide?.(i) ?? { accept: true, reasons: [] }
    return respondToProposal({
      signer: p.signer, channel: q, deps, nonces: o.nonces?.[i] ?? new MemNonces(),
      decide: async () => (d === 'silent' ? new Promise<ProviderDecision>(() => {}) : d)
    })
  })
  const proposal = o.proposal ?? createProposal(buyer.signer, query, { now: Date.now() })
  const [b, ...ps] = await Promise.allSettled([negotiate({ signer: buyer.signer, proposal, channels, deps }), ...provs])
  return { buyer: b as never, providers: ps as never }
}

const reasonOf = (r: PromiseSettledResult<unknown>): string => (r.status === 'rejected' ? (r.reason as ProtocolAbort).reason ?? (r.reason as Error).name : 'fulfilled')

describe('negotiation', () => {
  it('all accept: every party ends with the same certificate and session parameters', async () => {
    const r = await run()
    expect(r.buyer.status).toBe('fulfilled')
    if (r.buyer.status !== 'fulfilled') return
    for (const p of r.providers) {
      expect(p.status).toBe('fulfilled')
      if (p.status !== 'fulfilled' || p.value.kind !== 'certified') throw new Error('not certified')
      expect(toHex(p.value.params.session)).toBe(toHex(r.buyer.value.params.session))
      expect([...p.value.params.ephemeralKeys.keys()]).toEqual(query.participants.providers)
    }
  })

  it('a rejection: PolicyRejected naming the provider and its reasons, no certificate', async () => {
    const r = await run({ decide: (i) => (i === 1 ? { accept: false, reasons: [{ code: 'column_denied', message: 'no license' }] } : { accept: true, reasons: [] }) })
    expect(r.buyer.status).toBe('rejected')
    const e = (r.buyer as PromiseRejectedResult).reason as PolicyRejected
    expect(e).toBeInstanceOf(PolicyRejected)
    expect(e.rejections).toEqual([{ provider: providers[1]?.peerId, reasons: [{ code: 'column_denied', message: 'no license' }] }])
    expect(r.providers[1]?.status === 'fulfilled' && r.providers[1].value.kind).toBe('rejected')
    for (const i of [0, 2]) expect(r.providers[i]?.status).toBe('rejected') // told to stop, never certified
  })

  it('silence: a timeout naming the silent provider', async () => {
    const r = await run({ decide: (i) => (i === 2 ? 'silent' : { accept: true, reasons: [] }) })
    const e = (r.buyer as PromiseRejectedResult).reason as ProtocolAbort
    expect([e.reason, e.accused]).toEqual(['timeout', providers[2]?.peerId])
  })

  it('a proposal altered after signing is refused (bad_signature)', async () => {
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    const tampered = { ...p, proposal: { ...p.proposal, query: { ...p.proposal.query, title: 'other' } } }
    const r = await run({ proposal: tampered })
    for (const x of r.providers) expect(reasonOf(x)).toBe('bad_signature')
  })

  it('an expired proposal is refused', async () => {
    const r = await run({ proposal: createProposal(buyer.signer, query, { now: Date.now() - 3_600_000 }) })
    for (const x of r.providers) expect(reasonOf(x)).toBe('expired')
  })

  it('a replayed proposal (same nonce) is refused even after a restart of the store', async () => {
    const nonces = providers.map(() => new MemNonces())
    const p = createProposal(buyer.signer, query, { now: Date.now() })
    const first = await run({ proposal: p, nonces })
    expect(first.buyer.status).toBe('fulfilled')
    const again = await run({ proposal: p, nonces })
    for (const x of again.providers) expect(reasonOf(x)).toBe('replay')
  })

  const certTamper = (f: (c: Certificate) => void, resign: boolean) => (i: number, frame: Uint8Array, n: number): Uint8Array => {
    if (n !== 1 || i !== 0) return frame // the second frame to provider 0 is the certificate
    const c = JSON.parse(new TextDecoder().decode(frame.subarray(1))) as Certificate
    f(c)
    if (resign) c.buyer_sig = toHex(buyer.signer.sign(certificateDigest(c.body)))
    const json = new TextEncoder().encode(JSON.stringify(c))
    const out = new Uint8Array(json.length + 1)
    out[0] = frame[0] as number
    out.set(json, 1)
    return out
  }

  it.each([
    ['a forged acceptance', (c: Certificate) => { const a = c.body.acceptances[1]; if (a) a.sig = a.sig.replace(/^../, a.sig.startsWith('00') ? '11' : '00') }, 'invalid_certificate'],
    ['a missing acceptance', (c: Certificate) => { c.body.acceptances.pop() }, 'invalid_certificate'],
    ['an extra acceptance', (c: Certificate) => { c.body.acceptances.push(c.body.acceptances[0] as never) }, 'invalid_certificate'],
    ['a swapped ephemeral key for this provider', (c: Certificate) => { const a = c.body.acceptances.find((x) => x.provider === providers[0]?.peerId); if (a) a.ephemeral = 'ab'.repeat(32) }, 'invalid_certificate'],
    ['a buyer signature over something else', (c: Certificate) => { c.buyer_sig = '00'.repeat(64) }, 'bad_signature']
  ])('a certificate with %s is refused', async (_n, f, reason) => {
    // a malicious buyer re-signs what it altered; only the buyer-signature case is left unsigned
    const r = await run({ tamper: certTamper(f, reason !== 'bad_signature') })
    expect(reasonOf(r.providers[0] as PromiseSettledResult<unknown>)).toBe(reason)
  })

  it('a certificate replayed to a provider whose ephemeral key changed is refused (replay)', async () => {
    const r = await run()
    if (r.buyer.status !== 'fulfilled') throw new Error('setup failed')
    const cert = r.buyer.value.certificate
    const me = providers[0]?.peerId as string
    expect(() => verifyCertificate(cert, deps, { proposal: r.buyer.status === 'fulfilled' ? r.buyer.value.params.session : new Uint8Array(), self: me, ephemeral: new Uint8Array(32), buyer: buyer.peerId }))
      .toThrow(ProtocolAbort)
    const digest = (r.providers[0] as PromiseFulfilledResult<{ kind: 'certified'; proposal: { digest: Uint8Array } }>).value.proposal.digest
    try {
      verifyCertificate(cert, deps, { proposal: digest, self: me, ephemeral: new Uint8Array(32).fill(9), buyer: buyer.peerId })
      throw new Error('accepted')
    } catch (e) {
      expect((e as ProtocolAbort).reason).toBe('replay')
    }
  })

  it('a proposal from a provider (wrong role) is refused', async () => {
    const [b, q] = memoryChannelPair(providers[1]?.peerId as string, providers[0]?.peerId as string)
    const p = createProposal(providers[1]?.signer as Party['signer'], query, { now: Date.now() })
    await b.send(new Uint8Array([1, ...new TextEncoder().encode(JSON.stringify({ proposal: p.proposal, sig: p.sig }))]))
    await expect(respondToProposal({ signer: providers[0]?.signer as Party['signer'], channel: q, deps, nonces: new MemNonces(), decide: async () => ({ accept: true, reasons: [] }) }))
      .rejects.toMatchObject({ info: { reason: 'wrong_role' } })
  })
})
