// The serving side of an agent: answers proposals on /mpc-agent/negotiate/2.0.0 under the local
// policy (with manual approval through the control socket or the UI), then computes its vector
// and runs the provider side of /mpc-agent/masked-sum/4.0.0. Every step lands in the audit log;
// an aborted run is recorded and the agent keeps serving.
import type { Agent } from './agent.ts'
import type { Stream } from '@libp2p/interface'
import type { RunEvent } from './events.ts'
import { AuditLog } from './audit.ts'
import { FileNonceStore } from './nonce-store.ts'
import { DurableStore } from './store.ts'
import { AdmissionStore, sourceId } from './admission.ts'
import { PrivacyLedger, StoreLedger, budgetPolicy, ledgerSource } from './privacy-ledger.ts'
import { rhoForEpsilonDelta } from '../privacy/accounting.ts'
import { ApprovalQueue, startControlServer } from './control.ts'
import { preopen, type PreOpened } from './preopen.ts'
import { RunRegistry, deferred, peersToHangUp, routeHead as peek, type AcceptedProposal, type ProviderRun, type RouteHead } from './sessions.ts'
import {
  FIRST_FRAME_WAIT_MS, LATE_CERTIFICATE_MARGIN_MS, LATE_CERTIFICATE_WAIT_MS, MAX_CONCURRENT_RUNS, MAX_PROPOSALS_PER_MINUTE, MAX_PROPOSALS_PER_PEER_PER_MINUTE,
  MAX_REFUSALS_RECORDED_PER_PEER_PER_MINUTE, MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR, MAX_MASKED_SUM_STREAMS_PER_PEER_PER_MINUTE, MAX_RUNS_PER_PEER, RateLimiter, SlotPool
} from './limits.ts'
import { providerDeps, inspectCertificate, peerNamer, resolverFor, loadLocalPolicy, sameRun } from './context.ts'
import { MASKED_SUM_PROTOCOL, NEGOTIATE_PROTOCOL } from '../net/constants.ts'
import { acceptChannel, channelFromStream } from '../net/framing.ts'
import { handleProtocol, openChannel, relayNameOf, type AgentNode } from '../net/node.ts'
import { linkTo, mib, relayOfAddr, runBytesPerLink, type Link } from '../net/relays.ts'
import { respondToProposal, type VerifiedProposal, type ProviderDecision } from '../protocol/negotiation.ts'
import { runProvider, type ProviderHooks } from '../protocol/masked-sum-provider.ts'
import { MSG } from '../protocol/masked-sum-messages.ts'
import { describeAbort, encodeAbort } from '../protocol/abort.ts'
import { settle } from '../protocol/evidence.ts'
import { auditedAbort, saveEvidence } from './evidence-files.ts'
import { ProtocolAbort, type AbortInfo } from '../protocol/errors.ts'
import { ChannelClosedError, type Channel } from '../protocol/transport.ts'
import { safeText } from '../protocol/bounded-json.ts'
import { evaluatePolicy, describeProposal } from '../policy/evaluate.ts'
import { differencingMessage, pinGroups } from '../policy/differencing.ts'
import { templateDigest } from '../query/validate.ts'
import { columnsOf } from '../query/columns.ts'
import { layoutOf } from '../query/layout.ts'
import { addQueryNoise, computeVector } from '../data/compute.ts'
import { validateDatasets, datasetFor } from '../data/source.ts'
import { checkDataset } from '../data/check.ts'
import { COMPUTE_FAILED, failureCategory } from '../data/errors.ts'
import { fromHex as hexToBytes, toHex } from '../crypto/bytes.ts'
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
  const state = DurableStore.open(paths.state)
  const nonces = new FileNonceStore(state, { legacyPath: paths.nonces })
  const admissions = new AdmissionStore(state)
  // privacy.md §8: reservations left by a crash before their seed reveal are released (no result can exist)
  const { ledger, recovered } = await PrivacyLedger.open(new StoreLedger(state))
  let datasets = validateDatasets(config.datasets, paths.dir)
  const approvals = new ApprovalQueue()
  const control = await startControlServer(paths.control, approvals)
  const registry = new RunRegistry()
  const stopping = new AbortController()
  const resolve = resolverFor(agent)
  const nameOf = peerNamer(agent)
  const active = new Set<Promise<void>>()

  // Output and audit never throw into a handler: a failure to record must not end serving (issue 16).
  const say = (line: string): void => {
    try {
      o.log(line)
    } catch {
      // the log is gone (disk full?): nothing better to do than keep serving
    }
  }
  const emit = (e: RunEvent): void => {
    try {
      o.emit(e)
    } catch (err) {
      say(`mpc-agent serve: could not output a ${e.type} event: ${(err as Error)?.message ?? String(err)}`)
    }
  }
  // Only for what is recorded after the fact (aborts, refusals). Proposal, decision, certificate and
  // receipt entries still throw: policy history (max_runs_per_buyer_per_day) counts them, so a run
  // that cannot record its certificate must fail (as local_error), not proceed unaudited.
  const record = (kind: Parameters<AuditLog['append']>[0], f: Parameters<AuditLog['append']>[1]): void => {
    try {
      audit.append(kind, f)
    } catch (err) {
      say(`mpc-agent serve: could not append a ${kind} entry to the audit log: ${(err as Error)?.message ?? String(err)}`)
    }
  }
  /** Every handler's work: it settles only by resolving; whatever escapes is logged, never unhandled. */
  const track = (p: Promise<void>): void => {
    const q = p.catch((err: unknown) => {
      say(`mpc-agent serve: a stream handler failed (serving continues): ${(err as Error)?.message ?? String(err)}`)
    })
    active.add(q)
    void q.finally(() => active.delete(q))
  }

  // Refused streams (issue 14 §5): each is logged and audited with the peer and the reason, at most
  // MAX_REFUSALS_RECORDED_PER_PEER_PER_MINUTE per peer; the rest are counted into the next record.
  const refusalRate = new RateLimiter(MAX_REFUSALS_RECORDED_PER_PEER_PER_MINUTE, 60_000)
  const evidenceRate = new RateLimiter(MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR, 3_600_000)
  const unrecorded = new Map<string, number>()
  const recordRefusal = (protocol: 'negotiate' | 'masked-sum', remote: string, info: Pick<AbortInfo, 'reason' | 'detail'>): void => {
    if (!refusalRate.take(remote)) {
      unrecorded.set(remote, (unrecorded.get(remote) ?? 0) + 1)
      return
    }
    const more = unrecorded.get(remote) ?? 0
    unrecorded.delete(remote)
    const detail = safeText(info.detail)
    say(`${protocol} stream from ${nameOf(remote)} refused: ${info.reason}: ${detail}${more ? ` (and ${more} earlier refused streams from this peer not recorded one by one)` : ''}`)
    record('refused', { data: { peer: remote, protocol, reason: info.reason, detail, ...(more ? { unrecorded: more } : {}) } })
  }

  const initial = loadLocalPolicy(agent, resolve, o.log)
  if (initial.error && Object.keys(config.datasets).length > 0) o.log(`mpc-agent serve: ${initial.error} (see README "Policy")`)

  // --- negotiation (protocols/negotiation.md) -------------------------------------------------
  const proposalRate = new RateLimiter(MAX_PROPOSALS_PER_PEER_PER_MINUTE, 60_000)
  const totalProposalRate = new RateLimiter(MAX_PROPOSALS_PER_MINUTE, 60_000)
  const slots = new SlotPool(MAX_RUNS_PER_PEER, MAX_CONCURRENT_RUNS)
  await handleProtocol(node, NEGOTIATE_PROTOCOL, (stream, remote, connection) => {
    const channel = channelFromStream(stream, remote)
    // limits (SECURITY.md "Limits"): an allowlisted peer cannot make this agent negotiate without
    // bound, nor take the run slots of the others (per peer as well as in total)
    let refusal = !proposalRate.take(remote) ? `more than ${MAX_PROPOSALS_PER_PEER_PER_MINUTE} proposals per minute from ${remote}`
      : !totalProposalRate.take('*') ? `more than ${MAX_PROPOSALS_PER_MINUTE} proposals per minute in total; try again later` : null
    if (!refusal) {
      const full = slots.take(remote)
      refusal = full === 'key' ? `${config.name} already handles ${MAX_RUNS_PER_PEER} runs proposed by ${remote}; try again later`
        : full === 'total' ? `${config.name} already handles ${MAX_CONCURRENT_RUNS} runs; try again later` : null
    }
    if (refusal) {
      recordRefusal('negotiate', remote, { reason: 'local_error', detail: refusal })
      // sent before any proposal was read: bound to no run (session null), it proves and claims nothing
      track(channel.send(encodeAbort(identity.signer, null, remote, { reason: 'local_error', accused: null, detail: refusal })).then(() => channel.close(), () => {}))
      return
    }
    // a buyer that leaves (timeout, crash, Ctrl-C) takes its proposal out of the approval queue
    const gone = new AbortController()
    stream.addEventListener('close', () => gone.abort(new Error('the buyer closed the negotiation stream')), { once: true })
    // the buyer's link as it is now: relayed through a relay with a data limit, or not (README "Across firewalls")
    const link = linkTo([connection])
    track(negotiateAndRun(channel, gone.signal, link).finally(() => slots.release(remote)))
  })

  for (const run of recovered) record('privacy_ledger', { proposal: run, data: { op: 'release', reason: 'recovered after a restart: the run never revealed its seed' } })

  /** The decision recorded when the negotiation ended before this provider decided (never sent: nobody is listening). */
  const ended = (): ProviderDecision => ({ accept: false, reasons: [{ code: 'negotiation_ended', message: 'the negotiation ended before this provider decided' }] })

  async function decide(vp: VerifiedProposal, signal: AbortSignal, pinned: (proposal: string) => void, reserved: (proposal: string) => void, link: Link | null): Promise<ProviderDecision> {
    const digest = toHex(vp.digest)
    const q = vp.query
    audit.append('proposal', { proposal: digest, data: { buyer: vp.buyer, query_id: q.id, title: q.title, dataset: q.dataset, providers: q.participants.providers } })
    const { policy, error } = loadLocalPolicy(agent, resolve, o.log)
    let decision: ProviderDecision
    if (!policy) {
      decision = { accept: false, reasons: [{ code: 'no_policy', message: error ?? 'no policy' }] }
    } else {
      const source = Object.hasOwn(datasets, q.dataset) ? sourceId(datasetFor(datasets, q.dataset)) : undefined
      const differencing = policy.differencing_window_s > 0
      decision = evaluatePolicy(policy, {
        query: q, buyer: vp.buyer, self,
        configuredPeers: new Map(config.peers.map((p) => [p.peerId, p.role])),
        history: { certifiedRunsByBuyerSince: (b) => admissions.runsBy(b) }, // the last 24 h (negotiation.md §6.3)
        now: Date.now(), nameOf, pins: differencing ? admissions.list() : [], source
      })
      if (decision.accept && !Object.hasOwn(datasets, q.dataset)) {
        decision = { accept: false, reasons: [{ code: 'dataset_not_configured', message: `dataset "${q.dataset}" is not configured at ${config.name}` }] }
      }
      // the proposal came through a relay whose data limit the run would exceed: refused now,
      // before any row is read, not cut off by the relay halfway (negotiation.md §6.4, reason relay_limit)
      const need = runBytesPerLink(layoutOf(q).length, q.participants.providers.length)
      if (decision.accept && link?.kind === 'relayed' && link.remainingBytes != null && link.remainingBytes < need) {
        const relay = link.relay ? relayNameOf(node, link.relay) : 'a relay'
        decision = { accept: false, reasons: [{ code: 'relay_limit', message: `the run needs about ${mib(need)} on the connection from ${config.name}, which runs via relay ${relay} with ${mib(link.remainingBytes)} left (the relay's data limit)` }] }
      }
      if (decision.accept) {
        // schema check at acceptance (negotiation.md §6.1): metadata only, before signing
        const bad = await checkDataset(datasetFor(datasets, q.dataset), q, config.name)
        if (bad) {
          say(`proposal ${digest.slice(0, 12)}: ${bad.local}`)
          decision = { accept: false, reasons: [{ code: bad.code, message: bad.message }] }
        }
      }
      if (decision.accept && policy.approval === 'manual') {
        const summary = {
          v: 1 as const, type: 'proposal' as const, proposalId: digest, buyer: nameOf(vp.buyer), dataset: q.dataset, title: q.title,
          columns: [...new Set(Object.values(columnsOf(q)).flat())], cells: layoutOf(q).cells,
          providers: q.participants.providers.map(nameOf), policy: { accept: true, reasons: [] }
        }
        emit(summary)
        say(`proposal ${digest.slice(0, 12)} from ${nameOf(vp.buyer)} waits for approval: \`mpc-agent approve ${digest.slice(0, 12)}\` or \`mpc-agent reject ${digest.slice(0, 12)}\``)
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
      // the negotiation may have ended while we decided (the buyer aborted, sent junk, or we ran out of time):
      // then nothing is admitted, pinned or reserved for it (negotiation.md §6.2: no certificate can follow)
      if (decision.accept && signal.aborted) decision = ended()
      if (decision.accept) {
        // negotiation.md §6.2: rate count and differencing pin checked and written in one fsync'ed step, before ACCEPT
        const r = admissions.admit({
          proposal: digest, buyer: vp.buyer, providers: q.participants.providers, dataset: q.dataset, maxRuns: policy.max_runs_per_buyer_per_day,
          pin: differencing ? { groups: pinGroups(policy, q.dataset, vp.buyer, source), until: vp.proposal.deadline + policy.differencing_window_s * 1000 } : undefined
        })
        if (r.ok) pinned(digest)
        else if ('conflict' in r) decision = { accept: false, reasons: [{ code: 'differencing', message: differencingMessage(r.conflict, policy.differencing_window_s, nameOf, vp.buyer) }] }
        else decision = { accept: false, reasons: [{ code: 'rate_limited', message: `this buyer already had ${r.runs} accepted runs in the last 24 h (limit ${policy.max_runs_per_buyer_per_day})` }] }
      }
      if (decision.accept && q.privacy && policy.privacy && source) {
        // privacy.md §8: the run's cost is reserved durably (fsync) before ACCEPT leaves, atomically with other runs
        const rho = rhoForEpsilonDelta(q.privacy.epsilon, q.privacy.delta)
        const src = ledgerSource(source)
        const res = await ledger.reserve({ run: digest, buyer: vp.buyer, source: src, rho, budget: budgetPolicy(policy.privacy) })
        if (res.ok) {
          reserved(digest)
          audit.append('privacy_ledger', { proposal: digest, data: { op: 'reserve', buyer: vp.buyer, source: src, rho, epsilon: q.privacy.epsilon, delta: q.privacy.delta } })
        } else {
          admissions.release(digest)
          decision = { accept: false, reasons: [{ code: 'privacy_budget', message: res.message }] }
        }
      }
      // ended while the reservation was written: the caller has released the pin and the reservation (pinned,
      // reserved); recorded as what it is, not as an acceptance nobody received
      if (decision.accept && signal.aborted) decision = ended()
    }
    audit.append('decision', { proposal: digest, data: decision })
    emit({ v: 1, type: 'decision', provider: self, decision: decision.accept ? 'accept' : 'reject', reasons: decision.reasons.map((r) => r.message) })
    say(`proposal ${digest.slice(0, 12)} "${q.title}" from ${nameOf(vp.buyer)}: ${decision.accept ? 'accepted' : `rejected (${decision.reasons.map((r) => r.code).join(', ')})`}`)
    return decision
  }

  /** The relay a peer's link runs through, by name, while a relayed connection to it is open; else null. */
  function viaRelay(peer: string): string | null {
    const configured = config.peers.find((p) => p.peerId === peer)?.addr
    const l = linkTo(node.getConnections(peerIdFromString(peer)), configured)
    if (l?.kind === 'relayed' && l.relay) return relayNameOf(node, l.relay)
    // the connection is gone (the relay was cut): the configured address still says which relay it used
    const r = configured && !l ? relayOfAddr(configured) : null
    return r ? relayNameOf(node, r) : null
  }

  async function negotiateAndRun(channel: Channel, buyerGone: AbortSignal, link: Link | null): Promise<void> {
    let session: string | null = null
    let proposalHex: string | null = null
    let run: ProviderRun | null = null
    let runnerStarted = false
    let accepted: AcceptedProposal | null = null
    let finished = false
    let pinnedFor: string | null = null
    let revealed = false
    let budgetFor: string | null = null
    /** Streams to co-providers opened at our ACCEPT (preopen.ts), taken by the run or closed unused. */
    const early = new Map<string, PreOpened>()
    // privacy.md §8: a reservation is released when the run ends before this provider revealed its seed
    const releaseBudget = async (reason: string): Promise<void> => {
      const run = budgetFor
      if (!run || revealed) return
      budgetFor = null
      try {
        if (await ledger.release(run, reason)) record('privacy_ledger', { proposal: run, data: { op: 'release', reason } })
      } catch (err) {
        say(`mpc-agent serve: could not release the privacy budget of ${run.slice(0, 12)}: ${(err as Error)?.message ?? String(err)}`)
      }
    }
    // aborted when the negotiation fails while decide() still runs (respondToProposal stops waiting for it,
    // it does not stop it): decide then admits nothing, and what it admitted meanwhile is released at once
    const negotiationOver = new AbortController()
    const pinned = (p: string): void => {
      pinnedFor = p
      if (negotiationOver.signal.aborted) {
        admissions.release(p)
        pinnedFor = null
      }
    }
    const reserved = (p: string): void => {
      budgetFor = p
      if (negotiationOver.signal.aborted) void releaseBudget('no certificate')
    }
    try {
      const outcome = await respondToProposal({
        signer: identity.signer, channel, deps: providerDeps(), nonces, signal: stopping.signal,
        decide: async (vp) => {
          proposalHex = toHex(vp.digest) // an abort from here on is recorded with its proposal
          const d = await decide(vp, AbortSignal.any([stopping.signal, buyerGone, negotiationOver.signal]), pinned, reserved, link)
          if (d.accept && !finished) {
            // before ACCEPT leaves: a co-provider's XCHECK may now arrive before our certificate
            const q = vp.query
            accepted = { proposal: toHex(vp.digest), buyer: vp.buyer, providers: [...q.participants.providers], until: Date.now() + q.timeouts.negotiate_s * 1000 + LATE_CERTIFICATE_MARGIN_MS }
            registry.expect(accepted)
            // the streams to the higher co-providers open now, while the others decide (masked-sum.md §5.1)
            for (const p of q.participants.providers) {
              const entry = p !== self && comparePeers(self, p) < 0 ? config.peers.find((x) => x.peerId === p) : undefined
              if (entry) early.set(p, preopen(node, entry.addr, stopping.signal))
            }
          }
          return d
        }
      }).catch(async (e: unknown) => {
        negotiationOver.abort()
        // no certificate, so no data was read: the pin protects nothing (negotiation.md §6.2)
        if (pinnedFor) admissions.release(pinnedFor)
        pinnedFor = null
        await releaseBudget('no certificate')
        throw e
      })
      proposalHex = toHex(outcome.proposal.digest)
      if (outcome.kind === 'rejected') return
      const { params, certificate, proposal } = outcome
      void channel.close() // negotiation is over; a half-closed stream would count against the stream limit
      session = toHex(params.session)
      const q = proposal.query
      audit.append('certificate', {
        session, proposal: toHex(proposal.digest),
        data: { buyer: params.buyer, providers: params.providers, template: toHex(templateDigest(q)), query_id: q.id, certificate }
      })
      say(`session ${session.slice(0, 12)}: agreement certified by ${params.providers.length} providers; computing`)
      // rows are read only now, after every party signed (negotiation.md §1). No row value can make
      // this fail (§3.7); what can (the file vanished, the disk, memory) aborts with a fixed detail,
      // and the local log gets a fixed category only: an error text may quote the data.
      const vector = computeVector(datasetFor(datasets, q.dataset), q, { signal: stopping.signal }).then((r) => {
        addQueryNoise(q, r.vector) // clean → bound → aggregate → clamp → noise → (mask) (negotiation.md §3.7)
        return r.vector
      }, (e: unknown) => {
        say(`session ${session?.slice(0, 12)}: could not compute this provider's vector: ${failureCategory(e)}; \`mpc-agent data preview\` on the query shows the cause`)
        throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: COMPUTE_FAILED })
      })
      vector.catch(() => {}) // the runner observes it, unless the run failed first
      run = {
        session, proposal: toHex(proposal.digest), buyer: params.buyer, providers: params.providers,
        buyerChannel: deferred(), peerChannels: new Map(params.providers.filter((p) => p !== self).map((p) => [p, deferred<Channel>()]))
      }
      registry.add(run)
      registry.settle(run.proposal) // the certificate is here: streams now route to the run itself
      const r = run
      // the lower provider of each pair dials the higher one (masked-sum.md §5.1)
      for (const p of params.providers) {
        if (p === self || comparePeers(self, p) > 0) continue
        const entry = config.peers.find((x) => x.peerId === p)
        if (!entry) throw new ProtocolAbort({ reason: 'local_error', accused: null, detail: `co-provider ${p} is not a configured peer` })
        // a connection that died in a partition may still look open until the dial fails: retry
        // within the negotiation window; if it never works it surfaces as a timeout naming p below
        const pre = early.get(p)
        void (async () => {
          const ready = pre ? await pre.take() : null
          if (ready) return r.peerChannels.get(p)?.resolve(ready)
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
        events: (e) => emit({ ...e, v: 1 }),
        onReveal: async () => {
          // privacy.md §8: the cost is committed (fsync'ed) before the seed can leave; a crash after this never loses it
          if (budgetFor) {
            await ledger.commit(budgetFor)
            audit.append('privacy_ledger', { proposal: budgetFor, session: r.session, data: { op: 'commit' } }, { durable: true })
          }
          // masked-sum.md §9.2: on record (fsync'ed) before REVEAL leaves; from here the buyer can hold the result
          audit.append('reveal', { session: r.session, data: { note: 'self-mask seed revealed', buyer: params.buyer } }, { durable: true })
          revealed = true
        }
      })
      audit.append('receipt', { session, data: { receipt: res.receipt, output: res.result ? true : false } })
      say(`session ${session.slice(0, 12)}: done, receipt recorded`)
    } catch (e) {
      // settled once more (no deps): whatever was not proven by the runner is recorded as a dispute
      const info: AbortInfo = settle(e instanceof ProtocolAbort ? e.info : { reason: 'local_error', accused: null, detail: (e as Error)?.message ?? String(e) }, self, null)
      await releaseBudget(`aborted before reveal: ${info.reason}`)
      if (accepted) registry.settle((accepted as AcceptedProposal).proposal, info)
      // after REVEAL the buyer may hold the result whatever it says next (masked-sum.md §9.2)
      // the original aborter is whoever signed the relayed cause, which the relaying peer chose: it is named too
      const original = originalAborter(info, self)
      const relayedBy = info.by && info.by !== original ? ` (as relayed by ${nameOf(info.by)})` : ''
      const release = revealed ? { after_reveal: true, note: `result may have been released, then aborted by ${nameOf(original)}${relayedBy}` } : {}
      // one bundle per abort, at most MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR per buyer (limits.ts says why), counted
      // apart for proven accusations: cheap failures cannot use up the room for proof of a real fault
      const keep = evidenceRate.take(`${info.proven ? 'proven' : 'other'}:${channel.remote}`)
      const bundle = keep ? saveEvidence(paths.dir, identity.signer, session ?? proposalHex, info, o.log) : null
      const dropped = keep ? {} : { evidence_not_kept: `more than ${MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR} evidence bundles for runs of ${channel.remote} in the last hour` }
      record('abort', { session: session ?? undefined, proposal: proposalHex ?? undefined, data: { ...auditedAbort(info), ...release, ...(bundle ? { evidence_file: bundle } : {}), ...dropped } })
      if (revealed) say(`session ${session?.slice(0, 12)}: ${release.note}`)
      emit({ v: 1, type: 'abort', session, abort: info, exitCode: 4 })
      // a silent peer whose link runs through a relay: the relay is named with it (README "Across firewalls")
      const silent = info.reason === 'timeout' || info.reason === 'unreachable' ? (info.accused ?? info.disputants?.[1] ?? null) : null
      const relayed = silent ? viaRelay(silent) : null
      say(`run ${session?.slice(0, 12) ?? '(negotiation)'} aborted: ${safeText(describeAbort({ ...info, by: info.by ?? self }))}${relayed ? ` (the link to ${nameOf(silent as string)} ran via relay ${relayed}: the relay or the path through it may have failed)` : ''}${bundle ? ` (evidence: ${bundle})` : ''}`)
      // A party of this run that went silent (in our abort, or in the one we relay) may sit behind a stalled
      // connection: after a partition heals, TCP waits out its retransmission backoff (seconds) before anything
      // queued on it moves, so the next run's streams to that peer would miss their phase deadline. Our abort has
      // been sent (the runner's abortAll); the connection is closed now unless another run or accepted proposal
      // involves that peer, and the next run dials afresh (test/e2e/netns-query.test.ts, a cut link restored).
      // Only after a certificate and only for the run's own parties: a negotiation stream closed early (a probe,
      // a flood) hangs up nothing.
      if (run) {
        for (const peer of peersToHangUp(info, self, run, registry, (p) => slots.heldBy(p))) void node.hangUp(peerIdFromString(peer)).catch(() => {})
      }
      if (run) {
        // streams of this run still to come are answered with its signed abort (router below), not
        // left to wait for a certificate that exists: kept for 30 s, as long as the router waits
        run.aborted = info
        if (!runnerStarted) {
          // the runner never took the channels over: tell the parties we have, and those still to come
          const sessionBytes = hexToBytes(run.session)
          for (const d of [run.buyerChannel, ...run.peerChannels.values()]) {
            void d.promise.then((ch) => ch?.send(encodeAbort(identity.signer, sessionBytes, ch.remote, info)).then(() => ch.close())).catch(() => {})
          }
        }
        const r = run
        setTimeout(() => registry.remove(r.session), 30_000).unref()
        return
      }
    } finally {
      finished = true
      for (const e of early.values()) e.discard() // no-op for a stream the run took
      await releaseBudget('ended before reveal')
      // still awaiting a certificate when it ended (no abort recorded): nothing will come for it
      if (accepted) registry.settle((accepted as AcceptedProposal).proposal)
    }
    if (session) registry.remove(session)
  }


  // --- masked sum stream routing (masked-sum.md §5.1) -------------------------------------------
  const maskedSumStreams = new RateLimiter(MAX_MASKED_SUM_STREAMS_PER_PEER_PER_MINUTE, 60_000)
  await handleProtocol(node, MASKED_SUM_PROTOCOL, (stream, remote) => {
    if (!maskedSumStreams.take(remote)) {
      stream.abort(new Error('too many masked-sum streams'))
      recordRefusal('masked-sum', remote, { reason: 'local_error', detail: `more than ${MAX_MASKED_SUM_STREAMS_PER_PEER_PER_MINUTE} masked-sum streams from this peer in a minute: reset unread` })
      return
    }
    track(routeMaskedSumStream(stream, remote))
  })

  /**
   * Hand an inbound masked-sum stream to its run, or refuse it. Every refusal is a signed ABORT to
   * the dialer, logged and audited (issue 14 §5). A stream that names no run and no proposal this
   * agent accepted is refused at once; one for an accepted proposal still waiting for its
   * certificate waits (waitForCertificate).
   */
  async function routeMaskedSumStream(stream: Stream, remote: string): Promise<void> {
    let accepted: { first: Uint8Array; channel: Channel }
    const firstFrameDeadline = AbortSignal.timeout(FIRST_FRAME_WAIT_MS)
    try {
      accepted = await acceptChannel(stream, remote, AbortSignal.any([stopping.signal, firstFrameDeadline]))
    } catch (e) {
      stream.abort(new Error('no first message'))
      // a stream its dialer closed or reset before any frame claimed nothing: a pre-opened stream
      // (masked-sum.md §5.1) whose negotiation failed or aged. Only silence until our deadline is a refusal.
      if (e instanceof ChannelClosedError && !firstFrameDeadline.aborted) return
      if (!stopping.signal.aborted) {
        recordRefusal('masked-sum', remote, { reason: 'malformed_message', detail: `no first message within ${FIRST_FRAME_WAIT_MS / 1000} s (${(e as Error)?.name ?? 'error'})` })
      }
      return
    }
    const { first, channel } = accepted
    const refuse = async (info: AbortInfo): Promise<void> => {
      recordRefusal('masked-sum', remote, info)
      try {
        // bound to the session the dialer named (masked-sum.md §5.1): never an unbound abort on a run's stream
        await channel.send(encodeAbort(identity.signer, head ? hexToBytes(head.session) : null, remote, info))
        await channel.close()
      } catch {
        // gone
      }
    }
    const head = peek(first)
    if (!head) return refuse({ reason: 'malformed_message', accused: remote, detail: 'the first message on a masked-sum stream must be a well-formed START or XCHECK' })
    let run = registry.find((r) => sameRun(r, head, remote))
    if (!run) {
      const pending = registry.awaitingCertificate(head, remote)
      if (!pending) {
        const named = head.kind === 'start' ? `session ${head.session.slice(0, 16)}…` : `session ${head.session.slice(0, 16)}… / proposal ${(head.proposal ?? '').slice(0, 16)}…`
        return refuse({ reason: 'wrong_session', accused: remote, detail: `no run and no accepted proposal here for ${named}` })
      }
      const waited = await waitForCertificate(head, remote, pending)
      if ('refusal' in waited) return refuse(waited.refusal)
      run = waited.run
    }
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
  }

  /**
   * The late-certificate wait (masked-sum.md §5.1): a stream for a proposal this agent accepted
   * whose certificate has not arrived yet — a fast co-provider's XCHECK routinely comes first —
   * waits for the run, until `pending.until` (negotiate_s + 30 s after our acceptance). Kept
   * separate on purpose: when this wait expires without a certificate is where a signed "no
   * certificate received from the buyer" notice belongs (issue 16). Until then the stream is
   * refused as a timeout of the buyer as seen by this agent, never as a fault of the dialer.
   */
  async function waitForCertificate(head: RouteHead, remote: string, pending: AcceptedProposal): Promise<{ run: ProviderRun } | { refusal: AbortInfo }> {
    const arrived = Date.now()
    for (;;) {
      const run = registry.find((r) => sameRun(r, head, remote))
      if (run) return { run }
      const a = registry.awaitingCertificate(head, remote)
      // our negotiation ended waiting for the certificate: that is the notice, not a silence of the buyer
      // otherwise that failure, as our own statement bound to the session the stream names: not as a relay, whose
      // cause (bound to the proposal digest) the dialer would rightly refuse as evidence for this session
      if (a?.aborted) return { refusal: a.aborted.reason === 'timeout' && (a.aborted.accused === pending.buyer || a.aborted.disputants?.[1] === pending.buyer) ? noCertificateNotice(head, remote, self) : negotiationFailed(a.aborted) }
      const until = Math.min(a?.until ?? 0, arrived + LATE_CERTIFICATE_WAIT_MS)
      if (!a || stopping.signal.aborted || Date.now() >= until) break
      await registry.lookup((r) => sameRun(r, head, remote), Math.min(1000, until - Date.now()), stopping.signal)
    }
    if (stopping.signal.aborted) return { refusal: { reason: 'local_error', accused: null, detail: `${config.name} is shutting down` } }
    // the wait for a late certificate ended without one: a signed notice, not an accusation of the
    // dialer (it may be honest; the buyer may have withheld our certificate): masked-sum.md §5.1
    return { refusal: noCertificateNotice(head, remote, self) }
  }

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
function noCertificateNotice(head: { kind: 'start' | 'xcheck'; session: string }, remote: string, self: string): AbortInfo {
  return {
    reason: 'no_certificate', accused: null,
    // a START comes from the buyer itself: name the dispute; a co-provider's XCHECK does not name the buyer
    disputants: head.kind === 'start' ? [remote, self] : null,
    detail: `no certificate received from the buyer for session ${head.session.slice(0, 16)}… (${head.kind === 'start' ? 'START' : `XCHECK from ${remote}`})`
  }
}


/** The failure of the negotiation a stream's run would have come from, restated for that stream: nobody accused. */
function negotiationFailed(info: AbortInfo): AbortInfo {
  return { reason: info.reason, accused: null, detail: safeText(`the negotiation of this run's proposal failed here: ${info.detail}`) }
}

/** Who started an abort: the original sender when `info` relays another party's signed abort (its cause). */
function originalAborter(info: AbortInfo, self: string): string {
  const c = info.cause
  return typeof c === 'object' && c !== null && typeof (c as { by?: unknown }).by === 'string' ? (c as { by: string }).by : info.by ?? self
}
