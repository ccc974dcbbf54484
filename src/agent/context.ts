// Glue shared by the serving provider and the buyer's run: how this agent resolves names, loads
// its policy, validates queries from the wire and reads certificates shown by co-providers.
import { existsSync, readFileSync } from 'node:fs'
import type { Agent } from './agent.ts'
import type { ProviderRun } from './sessions.ts'
import { parsePeer } from '../crypto/peer.ts'
import { validateQuery } from '../query/validate.ts'
import { parsePolicyText, PolicyError, type Policy } from '../policy/policy.ts'
import { verifyCertificateSignature, type NegotiationDeps } from '../protocol/negotiation.ts'
import type { CertificateSummary } from '../protocol/masked-sum-provider.ts'

/** Config names (and peer IDs) → peer IDs, as this agent knows them. */
export function resolverFor(agent: Agent): (nameOrId: string) => string | undefined {
  return (x) => {
    if (x === agent.config.name || x === agent.identity.peerId) return agent.identity.peerId
    const p = agent.config.peers.find((e) => e.name === x || e.peerId === x)
    if (p) return p.peerId
    try {
      return parsePeer(x).id
    } catch {
      return undefined
    }
  }
}

/** Peer ID → the name this agent knows it by (its own name for itself), else the ID itself. */
export function peerNamer(agent: Agent): (peerId: string) => string {
  return (id) => (id === agent.identity.peerId ? agent.config.name : agent.config.peers.find((p) => p.peerId === id)?.name ?? id)
}

/**
 * The policy, re-read for every proposal so an operator's edit applies without a restart. A
 * missing or broken policy.yaml accepts nothing; `error` says why (it goes to the log and, as a
 * reason, to the buyer).
 */
export function loadLocalPolicy(agent: Agent, resolve: (x: string) => string | undefined, log: (l: string) => void): { policy: Policy | null; error: string | null } {
  if (!existsSync(agent.paths.policy)) return { policy: null, error: `provider ${agent.config.name} has no policy.yaml and accepts nothing` }
  try {
    return { policy: parsedPolicy(agent, resolve), error: null }
  } catch (e) {
    log(`mpc-agent: ${(e as Error).message}`)
    return { policy: null, error: `provider ${agent.config.name}'s policy.yaml is invalid, so it accepts nothing (its operator must fix it)` }
  }
}

// The policy is read at every proposal, so an edit applies to the next one without a reload; parsing
// it is what costs (5–9 ms of YAML per decision here, on the negotiation's critical path), so the
// last parse is kept and reused while the file's bytes and the names it can resolve are unchanged.
// Each caller gets its own copy (~20 µs): nothing a caller does to it can reach the next decision.
let lastPolicy: { path: string; text: string; names: string; policy: Policy } | null = null
let parses = 0

/** How many times this process parsed a policy.yaml for loadLocalPolicy (the rest were reused). */
export function policyParses(): number {
  return parses
}

function parsedPolicy(agent: Agent, resolve: (x: string) => string | undefined): Policy {
  const path = agent.paths.policy
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new PolicyError(`no policy at ${path}: write one (see README "Policy"; examples/ride-sharing/policy.yaml is a template)`)
  }
  // everything resolverFor(agent) answers from: a config reload that renames a peer re-parses
  const names = JSON.stringify([agent.config.name, agent.identity.peerId, agent.config.peers.map((p) => [p.name, p.peerId])])
  if (lastPolicy && lastPolicy.path === path && lastPolicy.text === text && lastPolicy.names === names) return structuredClone(lastPolicy.policy)
  const policy = parsePolicyText(text, path, resolve)
  parses++
  lastPolicy = { path, text, names, policy: structuredClone(policy) }
  return policy
}

export function providerDeps(): NegotiationDeps {
  return { checkQuery: validateQuery, now: () => Date.now() }
}

/** What a co-provider's XCHECK certificate says, for check 3 (masked-sum.md §8). */
export function inspectCertificate(c: unknown): CertificateSummary | null {
  try {
    const v = verifyCertificateSignature(c)
    if (!v) return null
    return { session: v.session, proposal: v.proposal, buyer: v.buyer, buyerSigned: v.buyerSigned, providers: v.providers }
  } catch {
    return null
  }
}

/** Does an inbound masked-sum stream's first message belong to `r`? (masked-sum.md §5.1) */
export function sameRun(r: ProviderRun, head: { kind: 'start' | 'xcheck'; session: string; proposal?: string }, remote: string): boolean {
  if (r.session === head.session) return head.kind === 'start' || r.providers.includes(remote)
  // otherwise only a run still waiting for exactly this stream, so the runner can name the fault
  if (r.aborted) return false
  // START routes by exact session only: a second run from the same buyer must never take over a run
  // still waiting; a START for an unknown session is refused as wrong_session (check 1)
  if (head.kind === 'start') return false
  return r.proposal === head.proposal && r.peerChannels.get(remote)?.settled === false
}

