// In-process parties for protocol tests: real Ed25519 identities, SessionParams built by hand
// (no negotiation), memory channels wired buyer↔provider and provider↔provider.
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signerFromSeed, verifySignature, type Signer } from '../../src/crypto/sign.ts'
import { comparePeers, parsePeer } from '../../src/crypto/peer.ts'
import { ephemeralKeyPair } from '../../src/crypto/kdf.ts'
import { fromHex, toHex } from '../../src/crypto/bytes.ts'
import { memoryChannelPair, type Channel } from '../../src/protocol/transport.ts'
import type { SessionParams } from '../../src/protocol/session.ts'
import type { CertificateSummary, ProviderHooks, ProviderRunResult } from '../../src/protocol/masked-sum-provider.ts'
import { runProvider } from '../../src/protocol/masked-sum-provider.ts'
import { runBuyer, type BuyerHooks, type BuyerRunOptions, type BuyerRunResult } from '../../src/protocol/masked-sum-buyer.ts'

export interface Party {
  peerId: string
  signer: Signer
}

export async function makeParty(): Promise<Party> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  return { peerId, signer: signerFromSeed(peerId, key.raw.subarray(0, 32)) }
}

export async function makeParties(n: number): Promise<{ buyer: Party; providers: Party[] }> {
  const buyer = await makeParty()
  const providers = await Promise.all(Array.from({ length: n }, makeParty))
  providers.sort((a, b) => comparePeers(a.peerId, b.peerId))
  return { buyer, providers }
}

/** A stand-in certificate for protocol tests: the buyer's signature over a session digest. */
export interface TestCertificate {
  session: string
  proposal: string
  buyer: string
  sig: string
}

export function testCertificate(buyer: Party, session: Uint8Array, proposal: Uint8Array): TestCertificate {
  return { session: toHex(session), proposal: toHex(proposal), buyer: buyer.peerId, sig: toHex(buyer.signer.sign(session)) }
}

export function inspectTestCertificate(c: unknown): CertificateSummary | null {
  const t = c as TestCertificate
  if (typeof t?.session !== 'string') return null
  const session = fromHex(t.session, 32)
  return {
    session,
    proposal: fromHex(t.proposal, 32),
    buyer: t.buyer,
    buyerSigned: verifySignature(parsePeer(t.buyer).publicKey, session, fromHex(t.sig, 64))
  }
}

export interface Setup {
  buyer: Party
  providers: Party[]
  params: SessionParams
  ephemeral: Map<string, Uint8Array>
  proposal: Uint8Array
}

export async function setup(n: number, length: number, over: Partial<SessionParams> = {}): Promise<Setup> {
  const { buyer, providers } = await makeParties(n)
  const ephemeralKeys = new Map<string, Uint8Array>()
  const ephemeral = new Map<string, Uint8Array>()
  for (const p of providers) {
    const kp = ephemeralKeyPair()
    ephemeralKeys.set(p.peerId, kp.publicKey)
    ephemeral.set(p.peerId, kp.privateKey)
  }
  const session = new Uint8Array(randomBytes(32))
  const params: SessionParams = {
    session,
    buyerSignature: buyer.signer.sign(session),
    buyer: buyer.peerId,
    providers: providers.map((p) => p.peerId),
    ephemeralKeys,
    length,
    bounds: [{ min: 0n, max: 1n << 40n }],
    signed: [false],
    outputProviders: [],
    timeouts: { negotiate_s: 5, compute_s: 10, confirm_s: 5 },
    deadline: Date.now() + 60_000,
    ...over
  }
  return { buyer, providers, params, ephemeral, proposal: new Uint8Array(randomBytes(32)) }
}

export interface RunAllOptions {
  vectors: BigUint64Array[]
  providerHooks?: Map<string, ProviderHooks>
  buyerHooks?: BuyerHooks
  /** Per-provider params (equivocation tests). */
  paramsFor?: (peerId: string) => SessionParams
  certificateFor?: (peerId: string) => unknown
  onState?: BuyerRunOptions['onState']
  /**
   * Hand the runner its streams and vector late, as serve does (they arrive while it already runs):
   * ms before the buyer's stream, before co-provider stream k (per provider and peer), before the vector.
   */
  late?: { buyer?: number; peer?: (self: string, peer: string) => number; vector?: number }
  /** Called with every frame a provider sends to the buyer. */
  tapToBuyer?: (provider: string, frame: Uint8Array) => void
  /** A provider's buyer stream replaced (check 2: a stranger's stream where the buyer's should be). */
  buyerChannelFor?: (provider: string) => Channel | undefined
  /** Called with every frame the buyer sends to a provider. */
  tapFromBuyer?: (provider: string, frame: Uint8Array) => void
  /** Each provider's onReveal (masked-sum.md §9.2). */
  onReveal?: (provider: string) => void
}

const later = <T>(v: T, ms: number | undefined): T | Promise<T> =>
  ms ? new Promise((r) => setTimeout(() => r(v), ms)) : v

function tapped(ch: Channel, tap: (frame: Uint8Array) => void): Channel {
  return { remote: ch.remote, send: (m) => { tap(m); return ch.send(m) }, receive: (x) => ch.receive(x), close: () => ch.close(), abort: (e) => ch.abort(e) }
}

export interface RunAllResult {
  buyer: PromiseSettledResult<BuyerRunResult>
  providers: Array<PromiseSettledResult<ProviderRunResult>>
}

export async function runAll(s: Setup, o: RunAllOptions): Promise<RunAllResult> {
  const buyerChannels = new Map<string, Channel>()
  const toBuyer = new Map<string, Channel>()
  for (const p of s.providers) {
    const [b, q] = memoryChannelPair(s.buyer.peerId, p.peerId)
    buyerChannels.set(p.peerId, o.tapFromBuyer ? tapped(b, (f) => o.tapFromBuyer?.(p.peerId, f)) : b) // b.remote = provider
    toBuyer.set(p.peerId, q) // q.remote = buyer
  }
  const peers = new Map<string, Map<string, Channel>>(s.providers.map((p) => [p.peerId, new Map()]))
  for (let i = 0; i < s.providers.length; i++) {
    for (let j = i + 1; j < s.providers.length; j++) {
      const a = s.providers[i] as Party
      const b = s.providers[j] as Party
      const [ca, cb] = memoryChannelPair(a.peerId, b.peerId)
      peers.get(a.peerId)?.set(b.peerId, ca)
      peers.get(b.peerId)?.set(a.peerId, cb)
    }
  }
  const cert = testCertificate(s.buyer, s.params.session, s.proposal)
  const late = o.late ?? {}
  const providerRuns = s.providers.map((p, i) => runProvider({
    signer: p.signer,
    params: o.paramsFor ? o.paramsFor(p.peerId) : s.params,
    proposalDigest: s.proposal,
    certificate: o.certificateFor ? o.certificateFor(p.peerId) : cert,
    inspectCertificate: inspectTestCertificate,
    ephemeralPrivateKey: Uint8Array.from(s.ephemeral.get(p.peerId) as Uint8Array),
    vector: later((o.vectors[i] as BigUint64Array).slice(), late.vector),
    buyer: later(o.buyerChannelFor?.(p.peerId) ?? (o.tapToBuyer ? tapped(toBuyer.get(p.peerId) as Channel, (f) => o.tapToBuyer?.(p.peerId, f)) : toBuyer.get(p.peerId) as Channel), late.buyer),
    peers: new Map([...(peers.get(p.peerId) as Map<string, Channel>)].map(([q, ch]) => [q, later(ch, late.peer?.(p.peerId, q))])),
    hooks: o.providerHooks?.get(p.peerId),
    onReveal: o.onReveal ? () => o.onReveal?.(p.peerId) : undefined
  }))
  const buyerRun = runBuyer({ signer: s.buyer.signer, params: s.params, channels: buyerChannels, hooks: o.buyerHooks, onState: o.onState })
  const [buyer, ...providers] = await Promise.allSettled([buyerRun, ...providerRuns])
  return { buyer: buyer as PromiseSettledResult<BuyerRunResult>, providers: providers as Array<PromiseSettledResult<ProviderRunResult>> }
}

export function randomVector(length: number, max = 1000): BigUint64Array {
  const v = new BigUint64Array(length)
  for (let i = 0; i < length; i++) v[i] = BigInt(Math.floor(Math.random() * max))
  return v
}

export function plainSum(vectors: BigUint64Array[], length: number): BigUint64Array {
  const s = new BigUint64Array(length)
  for (const v of vectors) for (let i = 0; i < length; i++) s[i] = (s[i] as bigint) + (v[i] as bigint)
  return s
}
