// The serving side of an agent: answers proposals on /mpc-agent/negotiate/1.0.0 under the local
// policy (with manual approval through the control socket or the UI), then computes its vector
// and runs the provider side of /mpc-agent/masked-sum/2.0.0. Every step lands in the audit log;
// an aborted run is recorded and the agent keeps serving.
import type { Agent } from './agent.ts'
import type { RunEvent } from './events.ts'
import { AuditLog } from './audit.ts'
import { FileNonceStore } from './nonce-store.ts'
import { ApprovalQueue, startControlServer } from './control.ts'
import { RunRegistry, deferred, type ProviderRun } from './sessions.ts'
import { MAX_CONCURRENT_RUNS, MAX_PROPOSALS_PER_PEER_PER_MINUTE, RateLimiter } from './limits.ts'
import { providerDeps, inspectCertificate, peerNamer, resolverFor, loadLocalPolicy, sameRun } from './context.ts'
import { MASKED_SUM_PROTOCOL, NEGOTIATE_PROTOCOL } from '../net/constants.ts'
import { acceptChannel, channelFromStream } from '../net/framing.ts'
import { handleProtocol, openChannel, type AgentNode } from '../net/node.ts'
import { respondToProposal, type VerifiedProposal, type ProviderDecision } from '../protocol/negotiation.ts'
import { runProvider, type ProviderHooks } from '../protocol/masked-sum-provider.ts'
import { MSG } from '../protocol/masked-sum-messages.ts'
import { encodeAbort } from '../protocol/abort.ts'
import { ProtocolAbort, type AbortInfo } from '../protocol/errors.ts'
import type { Channel } from '../protocol/transport.ts'
import { evaluatePolicy, describeProposal } from '../policy/evaluate.ts'
import { templateDigest } from '../query/validate.ts'
import { columnsOf } from '../query/columns.ts'
import { layoutOf } from '../query/layout.ts'
import { computeVector } from '../data/compute.ts'
import { validateDatasets, datasetFor } from '../data/source.ts'
import { fromHex as hexToBytes, fromUtf8, toHex } from '../crypto/bytes.ts'
import { comparePeers } from '../crypto/peer.ts'
import { peerIdFromString } from '@libp2p/peer-id'

export interface Services {
  stop(): Promise<void>
  /** After a config reload (SIGHUP): re-validate `config.datasets`; they apply from the next proposal. Throws on a bad dataset. */
  reloadDatasets(): void
  approvals: ApprovalQueue
}

/** Test-only deviations of a serving provider (test/helpers/deviant.ts). */
export interface ServeHooks {
  provider?: ProviderHooks
}

export interface ServeOptions {
  emit: (e: RunEvent) => void
  log: (line: string) => void
  hooks?: ServeHooks
  /** Interactive approval (the ink UI); otherwise manual approvals wait on the control socket. */
  approve?: (summary: Extract<RunEvent, { type: 'proposal' }> & { lines: string[] }, signal: AbortSignal) => Promise<boolean>
}

export async function startServices(agent: Agent, node: AgentNode, o: ServeOptions): Promise<Services> {
  const { identity, paths, config } = agent
  const self = identity.peerId
  const audit = AuditLog.open(paths, identity.signer)
  const nonces = new FileNonceStore(paths.nonces)
  let datasets = validateDatasets(config.datasets, paths.dir)
  const approvals = new ApprovalQueue()
  const control = await startControlServer(paths.control, approvals)
  const registry = new RunRegistry()
  const stopping = new AbortController()
  const resolve = resolverFor(agent)
  const nameOf = peerNamer(agent)
  const active = new Set<Promise<void>>()
  const track = (p: Promise<void>): void => {
    active.add(p)
    void p.finally(() => active.delete(p))
  }

  const initial = loadLocalPolicy(agent, resolve, o.log)
  if (initial.error && Object.keys(config.datasets).length > 0) o.log(`mpc-agent serve: ${initial.error} (see README "Policy")`)

  // --- negotiation (protocols/negotiation.md) -------------------------------------------------
  const proposalRate = new RateLimiter(MAX_PROPOSALS_PER_PEER_PER_MINUTE, 60_000)
  let runs = 0
  await handleProtocol(node, NEGOTIATE_PROTOCOL, (stream, remote) => {
    const channel = channelFromStream(stream, remote)
    // limits (SECURITY.md): an allowlisted peer cannot make this agent negotiate without bound
    const refusal = !proposalRate.take(remote) ? `more than ${MAX_PROPOSALS_PER_PEER_PER_MINUTE} proposals per minute from ${remote}`
      : runs >= MAX_CONCURRENT_RUNS ? `${config.name} already handles ${MAX_CONCURRENT_RUNS} runs; try again later` : null
    if (refusal) {
      o.log(`negotiation stream from ${nameOf(remote)} refused: ${refusal}`)
      track(channel.send(encodeAbort(identity.signer, null, { reason: 'local_error', accused: null, detail: refusal })).then(() => channel.close(), () => {}))
      return
    }
    runs++
    // a buyer that leaves (timeout, crash, Ctrl-C) takes its proposal out of the approval queue
    const gone = new AbortController()
    stream.addEventListener('close', () => gone.abort(new Error('the buyer closed the negotiation stream')), { once: true })
    track(negotiateAndRun(channel, gone.signal).finally(() => { runs-- }))
  })

  async function decide(vp: VerifiedProposal, signal: AbortSignal): Promise<ProviderDecision> {
    const digest = toHex(vp.digest)
    const q = vp.query
    audit.append('proposal', { proposal: digest, data: { buyer: vp.buyer, query_id: q.id, title: q.title, dataset: q.dataset, providers: q.participants.providers } })
    const { policy, error } = loadLocalPolicy(agent, resolve, o.log)
    let decision: ProviderDecision
    if (!policy) {
      decision = { accept: false, reasons: [{ code: 'no_policy', message: error ?? 'no policy' }] }
    } else {
      decision = evaluatePolicy(policy, {
        query: q, buyer: vp.buyer, self,
        configuredPeers: new Map(config.peers.map((p) => [p.peerId, p.role])),
        history: audit, now: Date.now(), nameOf
      })
      if (decision.accept && !(q.dataset in datasets)) {
        decision = { accept: false, reasons: [{ code: 'dataset_not_configured', message: `dataset "${q.dataset}" is not configured at ${config.name}` }] }
      }
      if (decision.accept && policy.approval === 'manual') {
        const summary = {
          v: 1 as const, type: 'proposal' as const, proposalId: digest, buyer: nameOf(vp.buyer), dataset: q.dataset, title: q.title,
          columns: [...new Set(Object.values(columnsOf(q)).flat())], cells: layoutOf(q).cells,
          providers: q.participants.providers.map(nameOf), policy: { accept: true, reasons: [] }
        }
        o.emit(summary)
        o.log(`proposal ${digest.slice(0, 12)} from ${nameOf(vp.buyer)} waits for approval: \`mpc-agent approve ${digest.slice(0, 12)}\` or \`mpc-agent reject ${digest.slice(0, 12)}\``)
        const waitSignal = AbortSignal.any([signal, AbortSignal.timeout(q.timeouts.negotiate_s * 1000)])
        const ok = o.approve
          ? await o.approve({ ...summary, lines: describeProposal(q, nameOf) }, waitSignal)
          : await approvals.wait(digest, summary, waitSignal)
        // nobody deciding within the negotiation deadline is a timeout, not a rejection (issue 17)
        if (!ok && waitSignal.aborted) {
          const why = signal.aborted ? 'before the buyer gave up' : `within ${q.timeouts.negotiate_s} s`
          decision = { accept: false, reasons: [{ code: 'approval_timeout', message: `the operator of ${config.name} did not decide ${why}` }] }
        }
        else if (!ok) decision = { accept: false, reasons: [{ code: 'operator_rejected', message: `the operator of ${config.name} did not approve the proposal` }] }
      }
    }
    audit.append('decision', { proposal: digest, data: decision })
    o.emit({ v: 1, type: 'decision', provider: self, decision: decision.accept ? 'accept' : 'reject', reasons: decision.reasons.map((r) => r.message) })
    o.log(`proposal ${digest.slice(0, 12)} "${q.title}" from ${nameOf(vp.buyer)}: ${decision.accept ? 'accepted' : `rejected (${decision.reasons.map((r) => r.code).join(', ')})`}`)
    return decision
  }

  async function negotiateAndRun(channel: Channel, buyerGone: AbortSignal): Promise<void> {
    let session: string | null = null
    let run: ProviderRun | null = null
    let runnerStarted = false
    try {
      const outcome = await respondToProposal({
        signer: identity.signer, channel, deps: providerDeps(), nonces, signal: stopping.signal,
        decide: (vp) => decide(vp, AbortSignal.any([stopping.signal, buyerGone]))
      })
      if (outcome.kind === 'rejected') return
      const { params, certificate, proposal } = outcome
      void channel.close() // negotiation is over; a half-closed stream would count against the stream limit
      session = toHex(params.session)
      const q = proposal.query
      audit.append('certificate', {
        session, proposal: toHex(proposal.digest),
        data: { buyer: params.buyer, providers: params.providers, template: toHex(templateDigest(q)), query_id: q.id, certificate }
      })
      o.log(`session ${session.slice(0, 12)}: agreement certified by ${params.providers.length} providers; computing`)
      // data is read only now, after every party signed (negotiation.md §1)
      const vector = computeVector(datasetFor(datasets, q.dataset), q, { signal: stopping.signal }).then((r) => r.vector, (e: unknown) => {
        // never forward the local message: it may describe our data
        o.log(`session ${session?.slice(0, 12)}: ${(e as Error).message}`)
        throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `provider ${config.name} could not compute its vector from local data` })
      })
      vector.catch(() => {}) // the runner observes it, unless the run failed first
      run = {
        session, proposal: toHex(proposal.digest), buyer: params.buyer, providers: params.providers,
        buyerChannel: deferred(), peerChannels: new Map(params.providers.filter((p) => p !== self).map((p) => [p, deferred<Channel>()]))
      }
      registry.add(run)
      const r = run
      // the lower provider of each pair dials the higher one (masked-sum.md §5.1)
      for (const p of params.providers) {
        if (p === self || comparePeers(self, p) > 0) continue
        const entry = config.peers.find((x) => x.peerId === p)
        if (!entry) throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `co-provider ${p} is not a configured peer` })
        // a connection that died in a partition may still look open until the dial fails: retry
        // within the negotiation window; if it never works it surfaces as a timeout naming p below
        void (async () => {
          const until = Date.now() + q.timeouts.negotiate_s * 1000
          for (let attempt = 0; Date.now() < until && !stopping.signal.aborted; attempt++) {
            try {
              const ch = await openChannel(node, entry.addr, MASKED_SUM_PROTOCOL, { signal: stopping.signal, timeoutMs: Math.max(1000, until - Date.now()), optimistic: true })
              r.peerChannels.get(p)?.resolve(ch)
              return
            } catch {
              await node.hangUp(peerIdFromString(p)).catch(() => {})
              await new Promise((res) => setTimeout(res, Math.min(2000, 250 * 2 ** attempt)))
            }
          }
        })()
      }
      // The runner starts at once, with the streams and the vector still on their way: it sends
      // XCHECK on each co-provider stream as soon as that stream exists. (Waiting for every stream
      // first made each provider wait for the XCHECKs of all lower providers, which in turn waited
      // for theirs: a chain of N − 1 hops before the first byte of any vector.)
      const waitMs = q.timeouts.negotiate_s * 1000
      runnerStarted = true
      const res = await runProvider({
        signer: identity.signer, params, proposalDigest: proposal.digest, certificate, inspectCertificate,
        ephemeralPrivateKey: outcome.ephemeralPrivateKey, vector,
        buyer: within(r.buyerChannel.promise, waitMs, params.buyer, 'START stream'),
        peers: new Map([...r.peerChannels].map(([p, d]) => [p, within(d.promise, waitMs, p, 'cross-check stream')])),
        signal: stopping.signal, hooks: o.hooks?.provider,
        events: (e) => o.emit({ ...e, v: 1 })
      })
      audit.append('receipt', { session, data: { receipt: res.receipt, output: res.result ? true : false } })
      o.log(`session ${session.slice(0, 12)}: done, receipt recorded`)
    } catch (e) {
      const info: AbortInfo = e instanceof ProtocolAbort ? e.info : { reason: 'local_error', accused: null, detail: (e as Error).message }
      audit.append('abort', { session: session ?? undefined, data: info })
      o.emit({ v: 1, type: 'abort', session, abort: info, exitCode: 4 })
      o.log(`run ${session?.slice(0, 12) ?? '(negotiation)'} aborted: ${info.reason}${info.accused ? ` (accused ${nameOf(info.accused)})` : ''}: ${info.detail}`)
      if (run && !runnerStarted) {
        // the runner never took the channels over: tell the parties we have, and those still to come
        run.aborted = info
        const frame = encodeAbort(identity.signer, hexToBytes(run.session), info)
        for (const d of [run.buyerChannel, ...run.peerChannels.values()]) {
          void d.promise.then((ch) => ch?.send(frame).then(() => ch.close())).catch(() => {})
        }
        const r = run
        setTimeout(() => registry.remove(r.session), 30_000).unref()
        return
      }
    }
    if (session) registry.remove(session)
  }

  // --- masked sum stream routing (masked-sum.md §5.1) -------------------------------------------
  await handleProtocol(node, MASKED_SUM_PROTOCOL, (stream, remote) => {
    track((async () => {
      let accepted: { first: Uint8Array; channel: Channel }
      try {
        accepted = await acceptChannel(stream, remote, AbortSignal.any([stopping.signal, AbortSignal.timeout(30_000)]))
      } catch {
        stream.abort(new Error('no first message'))
        return
      }
      const { first, channel } = accepted
      const head = peek(first)
      const refuse = async (info: AbortInfo): Promise<void> => {
        try {
          await channel.send(encodeAbort(identity.signer, null, info))
          await channel.close()
        } catch {
          // gone
        }
      }
      if (!head) return refuse({ reason: 'malformed_message', accused: remote, detail: 'first message on a masked-sum stream must be START or XCHECK' })
      const run = await registry.lookup((r) => sameRun(r, head, remote), 30_000, stopping.signal)
      if (!run) return refuse({ reason: 'wrong_session', accused: remote, detail: `no run here for session ${head.session.slice(0, 16)}…` })
      if (run.aborted) return refuse(run.aborted)
      if (first[0] === MSG.start) {
        if (remote !== run.buyer) return refuse({ reason: 'wrong_role', accused: remote, detail: `${remote} is not this run's buyer` })
        if (run.buyerChannel.settled) return refuse({ reason: 'malformed_message', accused: remote, detail: 'a second START stream' })
        run.buyerChannel.resolve(channel)
      } else {
        const d = run.peerChannels.get(remote)
        if (!d) return refuse({ reason: 'not_participant', accused: remote, detail: `${remote} is not a co-provider of this run` })
        if (d.settled) return refuse({ reason: 'malformed_message', accused: remote, detail: 'a second cross-check stream' })
        d.resolve(channel)
      }
    })())
  })

  return {
    approvals,
    reloadDatasets() {
      datasets = validateDatasets(config.datasets, paths.dir)
    },
    async stop() {
      stopping.abort(new Error('agent stopping'))
      await Promise.race([Promise.allSettled([...active]), new Promise((r) => setTimeout(r, 3000))])
      await node.unhandle([NEGOTIATE_PROTOCOL, MASKED_SUM_PROTOCOL]).catch(() => {})
      await new Promise<void>((r) => control.close(() => r()))
    }
  }
}

function within<T>(p: Promise<T>, ms: number, peer: string, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new ProtocolAbort({ reason: 'timeout', accused: peer, detail: `${peer} opened no ${what} within ${Math.round(ms / 1000)} s` })), ms)
    p.then((v) => {
      clearTimeout(t)
      if (v == null) reject(new ProtocolAbort({ reason: 'local_error', accused: null, detail: 'run ended' }))
      else resolve(v)
    }, (e: unknown) => {
      clearTimeout(t)
      reject(e as Error)
    })
  })
}

/** The routing fields of a first START / XCHECK frame (full validation happens in the runner). */
function peek(first: Uint8Array): { kind: 'start' | 'xcheck'; session: string; proposal?: string } | null {
  if (first[0] !== MSG.start && first[0] !== MSG.xcheck) return null
  try {
    const m = JSON.parse(fromUtf8(first.subarray(1))) as { session?: unknown; proposal?: unknown }
    if (typeof m.session !== 'string') return null
    return { kind: first[0] === MSG.start ? 'start' : 'xcheck', session: m.session, proposal: typeof m.proposal === 'string' ? m.proposal : undefined }
  } catch {
    return null
  }
}
