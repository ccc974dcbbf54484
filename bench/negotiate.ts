// The real negotiation (src/protocol/negotiation.ts) as the bench parties run it: the buyer as
// `mpc-agent query run` does (createProposal, negotiate), each provider as `mpc-agent serve` does
// (respondToProposal), with a policy that accepts and an in-memory nonce store. The SessionParams,
// ephemeral keys and certificate of every secure run come from here.
import {
  createProposal, negotiate, respondToProposal,
  type Certificate, type NonceStore, type ProviderOutcome
} from '../src/protocol/negotiation.ts'
import { providerDeps } from '../src/agent/context.ts'
import { validateQuery } from '../src/query/validate.ts'
import type { Signer } from '../src/crypto/sign.ts'
import type { Query } from '../src/query/types.ts'
import type { SessionParams } from '../src/protocol/session.ts'
import type { Channel } from '../src/protocol/transport.ts'
import type { EventSink } from '../src/protocol/events.ts'

export interface BuyerAgreement {
  params: SessionParams
  certificate: Certificate
  /** performance.now() at createProposal and with the certificate in hand (negotiate() resolved). */
  proposedAt: number
  agreedAt: number
}

/**
 * Buyer: propose `query` on the open negotiation channels and wait for the certificate. The
 * negotiation window runs from just before createProposal to negotiate() resolving, i.e. every
 * provider accepted and the buyer-signed certificate was handed to every stream.
 */
export async function buyerAgreement(signer: Signer, query: Query, channels: ReadonlyMap<string, Channel>, events?: EventSink): Promise<BuyerAgreement> {
  const proposedAt = performance.now()
  const proposal = createProposal(signer, query, { now: Date.now() })
  const { certificate, params } = await negotiate({
    signer, proposal, channels,
    deps: { checkQuery: validateQuery, now: () => Date.now(), events }
  })
  return { params, certificate, proposedAt, agreedAt: performance.now() }
}

/** Nonces answered before, forgotten after they expire (the agent's FileNonceStore, in memory). */
export class MemoryNonces implements NonceStore {
  private readonly seen = new Map<string, number>()
  has(nonceHex: string): boolean {
    return this.seen.has(nonceHex)
  }
  add(nonceHex: string, expiresAt: number): void {
    const now = Date.now()
    for (const [k, t] of this.seen) if (t < now) this.seen.delete(k)
    this.seen.set(nonceHex, expiresAt)
  }
}

const nonces = new MemoryNonces()

export type Certified = Extract<ProviderOutcome, { kind: 'certified' }>

/**
 * Provider: answer the buyer's proposal on `channel` (accept), and return the verified agreement.
 * `onAccept` runs when the decision is made, before ACCEPT leaves (where serve pre-opens its
 * co-provider streams). `store`: the provider's nonces (one per provider when several share a process).
 */
export async function providerAgreement(signer: Signer, channel: Channel, onAccept?: (providers: readonly string[]) => void, store: NonceStore = nonces): Promise<Certified> {
  const outcome = await respondToProposal({
    signer, channel, deps: providerDeps(), nonces: store,
    decide: async (vp) => {
      onAccept?.(vp.query.participants.providers)
      return { accept: true, reasons: [] }
    }
  })
  if (outcome.kind !== 'certified') throw new Error(`the bench provider rejected its own proposal: ${outcome.reasons.map((r) => r.code).join(', ')}`)
  return outcome
}
