// `mpc-agent query run`: the buyer's whole job. It starts its own libp2p node with the buyer's
// identity (it does not talk to a local `serve`; README "query run"), dials every provider,
// negotiates, runs the masked sum, and writes the decoded result atomically with a provenance
// file beside it. Nothing is written unless every check passed.
import { dirname, basename, join, resolve as resolvePath } from 'node:path'
import type { Agent } from './agent.ts'
import { startNode } from './agent.ts'
import type { ResultNoise, RunEvent } from './events.ts'
import { AuditLog } from './audit.ts'
import { acquireLock, writeFileAtomic } from './files.ts'
import { ConfigError } from './errors.ts'
import { peerNamer, resolverFor } from './context.ts'
import { MASKED_SUM_PROTOCOL, NEGOTIATE_PROTOCOL } from '../net/constants.ts'
import { openChannel, relayNameOf, type AgentNode } from '../net/node.ts'
import { linkTo, mib, runBytesPerLink } from '../net/relays.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { PeerUnreachableError } from '../net/errors.ts'
import { createProposal, negotiate, type Certificate } from '../protocol/negotiation.ts'
import { runBuyer, type BuyerHooks } from '../protocol/masked-sum-buyer.ts'
import { ProtocolAbort, PolicyRejected } from '../protocol/errors.ts'
import type { Channel } from '../protocol/transport.ts'
import { loadQueryFile } from '../query/parse.ts'
import { validateQuery, queryDigest } from '../query/validate.ts'
import { decodeResult, flagImplausible, resultToCsv, topCells, type ResultTable } from '../query/result.ts'
import { domainLabels, layoutOf } from '../query/layout.ts'
import type { ProtocolEvent } from '../protocol/events.ts'
import type { Query } from '../query/types.ts'
import { fromHex, toHex } from '../crypto/bytes.ts'
import { encodeAbort, type AbortMessage } from '../protocol/abort.ts'
import { settle } from '../protocol/evidence.ts'
import { writeEvidence } from './evidence-files.ts'
import { preopen, type PreOpened } from './preopen.ts'

export interface QueryRunOptions {
  queryFile: string
  out?: string
  format: 'json' | 'csv'
  /** Retries for unreachable providers, before negotiation only. */
  retry: number
  emit: (e: RunEvent) => void
  log: (line: string) => void
  signal: AbortSignal
  hooks?: BuyerHooks
}

export interface QueryRunResult {
  out: string
  provenance: string
  session: string
  table: ResultTable
  timings: Record<string, number>
}

export async function runQuery(agent: Agent, o: QueryRunOptions): Promise<QueryRunResult> {
  const self = agent.identity.peerId
  const resolve = resolverFor(agent)
  const query = loadQueryFile(o.queryFile, self, resolve)
  if (query.participants.buyer !== self) {
    throw new ConfigError(`${o.queryFile}: participants.buyer is ${query.participants.buyer}, but this agent is ${self}; run the query from the buyer's home`)
  }
  const out = resolvePath(o.out ?? `${query.id}.${o.format}`)
  const lock = acquireLock(out)
  const audit = AuditLog.open(agent.paths, agent.identity.signer)
  const nameOf = peerNamer(agent)
  const timings: Record<string, number> = {}
  const t0 = performance.now()
  const mark = (k: string, since: number): void => {
    timings[k] = Math.round(performance.now() - since)
  }
  let node: AgentNode | null = null
  let session: string | null = null
  let proposalHex: string | null = null
  const channels: Channel[] = []
  const msChannels: Channel[] = []
  let sumStarted = false
  /** Providers reached through a relay, and that relay's name: a failure on such a link names it. */
  const relayedVia = new Map<string, string>()
  const early = new Map<string, PreOpened>()
  try {
    // only dials the providers: without the relay client's modules when no relay is involved (node.ts)
    node = await startNode(agent, [], undefined, { directTo: query.participants.providers })
    const addrOf = (p: string): string => {
      const e = agent.config.peers.find((x) => x.peerId === p)
      if (!e) throw new ConfigError(`provider ${p} is not a configured peer: \`mpc-agent peers add NAME MULTIADDR --role provider\``)
      return e.addr
    }
    // 1. reach every provider (retried: nothing has been proposed yet)
    const tDial = performance.now()
    const neg = new Map<string, Channel>()
    // each provider's masked-sum stream opens as soon as its connection is up, while the negotiation
    // runs (masked-sum.md §5.1, preopen.ts): the libp2p stream set-up is then off the agreement → result path
    await Promise.all(query.participants.providers.map(async (p) => {
      o.emit({ v: 1, type: 'peer', peer: p, state: 'connecting' })
      const ch = await dialWithRetry(node as AgentNode, addrOf(p), NEGOTIATE_PROTOCOL, o.retry, o.signal, nameOf(p), o.log)
      channels.push(ch)
      neg.set(p, ch)
      early.set(p, preopen(node as AgentNode, addrOf(p), o.signal))
      o.emit({ v: 1, type: 'peer', peer: p, state: 'connected' })
    }))
    mark('dial_ms', tDial)
    // 1b. links through a relay (README "Across firewalls"): name them, and refuse a run whose
    // vectors would exceed a relay's data limit now, before anything is proposed or any row read
    const need = runBytesPerLink(layoutOf(query).length, query.participants.providers.length)
    for (const p of query.participants.providers) {
      const link = linkTo((node as AgentNode).getConnections(peerIdFromString(p)), addrOf(p))
      if (link?.kind !== 'relayed') continue
      const relay = link.relay ? relayNameOf(node as AgentNode, link.relay) : 'a relay'
      relayedVia.set(p, relay)
      o.log(`${nameOf(p)}: connected via relay ${relay}${link.remainingBytes != null ? ` (${mib(link.remainingBytes)} left on this relayed connection)` : ''}`)
      if (link.remainingBytes != null && link.remainingBytes < need && !o.hooks?.skipRelayPrecheck) {
        throw new ConfigError(`run refused before it started: it needs about ${mib(need)} on the connection to ${nameOf(p)}, which runs via relay ${relay} with ${mib(link.remainingBytes)} left (the relay's data limit per relayed connection, both directions): raise \`limits.data_mib\` in the relay's relay.yaml, query fewer cells, or connect to ${nameOf(p)} directly`)
      }
    }

    // 2. negotiate (protocols/negotiation.md)
    const tNeg = performance.now()
    o.emit({ v: 1, type: 'phase', phase: 'negotiate', state: 'start', at: Date.now() })
    const proposal = createProposal(agent.identity.signer, query, { now: Date.now() })
    proposalHex = toHex(proposal.digest)
    audit.append('proposal', { proposal: toHex(proposal.digest), data: { buyer: self, query_id: query.id, title: query.title, dataset: query.dataset, providers: query.participants.providers } })
    // the masked-sum streams are taken once every provider has accepted, while the certificate is
    // still being signed, sent and checked: pre-opened ones if young enough, else opened now
    const ms = new Map<string, Channel>()
    let msOpen: Promise<void> | null = null
    let accepted = 0
    const openMaskedSum = (): Promise<void> => Promise.all(query.participants.providers.map(async (p) => {
      try {
        const ch = (await early.get(p)?.take()) ?? await openChannel(node as AgentNode, addrOf(p), MASKED_SUM_PROTOCOL, { signal: o.signal, optimistic: true })
        channels.push(ch)
        msChannels.push(ch)
        ms.set(p, ch)
      } catch (e) {
        if (e instanceof PeerUnreachableError) throw new ProtocolAbort({ reason: 'unreachable', accused: p, detail: `${nameOf(p)} became unreachable after the agreement${relayedVia.has(p) ? ` (via relay ${relayedVia.get(p)}: ${e.detail})` : ''}` })
        throw e
      }
    })).then(() => {})
    let certificate: Certificate
    let params
    try {
      ;({ certificate, params } = await negotiate({
        signer: agent.identity.signer, proposal, channels: neg,
        deps: {
          checkQuery: validateQuery, now: () => Date.now(),
          events: (e) => {
            o.emit({ ...e, v: 1 })
            if (e.type === 'decision' && e.decision === 'accept' && ++accepted === query.participants.providers.length) {
              msOpen = openMaskedSum()
              msOpen.catch(() => {}) // awaited after the agreement
            }
          }
        },
        signal: o.signal, hooks: o.hooks
      }))
    } catch (e) {
      if (e instanceof PolicyRejected) audit.append('outcome', { proposal: toHex(proposal.digest), data: { rejected: e.rejections } })
      throw e
    }
    session = toHex(params.session)
    audit.append('certificate', { session, proposal: toHex(proposal.digest), data: { buyer: self, providers: params.providers, query_id: query.id, certificate } })
    o.emit({ v: 1, type: 'phase', phase: 'negotiate', state: 'done', at: Date.now() })
    o.log(`agreement certified by ${params.providers.map(nameOf).join(', ')} (session ${session.slice(0, 12)})`)
    mark('negotiate_ms', tNeg)
    for (const ch of neg.values()) void ch.close()

    // 3. masked sum (protocols/masked-sum.md)
    const tSum = performance.now()
    await (msOpen ?? openMaskedSum())
    sumStarted = true
    // progress counts cells of the query, not vector values (each cell has one value per slot, plus canaries)
    const { cells: queryCells, slots } = layoutOf(query)
    const perCell = Math.max(1, slots.length)
    const events = (e: ProtocolEvent): void => o.emit(e.type === 'progress'
      ? { ...e, v: 1, cells: Math.min(queryCells, Math.floor(e.cells / perCell)), totalCells: queryCells }
      : { ...e, v: 1 })
    const res = await runBuyer({ signer: agent.identity.signer, params, channels: ms, signal: o.signal, hooks: o.hooks, events })
    mark('masked_sum_ms', tSum)

    // 4. the result, atomically, with provenance (never partial: temp file + rename)
    const table = flagImplausible(query, decodeResult(query, Array.from(res.total)), res.implausible)
    const flagged = table.cells.filter((c) => c.implausible?.length)
    if (table.noise) o.log(noiseLine(table))
    if (flagged.length) o.log(`warning: ${flagged.length} cell(s) exceed the bounds the agreement allows (check 6b): some provider's input was implausible; they are flagged "implausible" in the result`)
    const provenance = join(dirname(out), `${basename(out)}.provenance.json`)
    const doc = resultDocument(query, session, table, basename(provenance))
    writeFileAtomic(out, o.format === 'csv' ? resultToCsv(table) : JSON.stringify(doc, null, 1) + '\n')
    mark('total_ms', t0)
    writeFileAtomic(provenance, JSON.stringify({
      v: 1,
      query, query_digest: toHex(queryDigest(query)), session,
      participants: { buyer: self, providers: params.providers.map((p) => ({ peer_id: p, name: nameOf(p) })) },
      certificate,
      vectors: res.dones, inclusion: res.inclusion,
      reveals: res.reveals.map(({ seed: _s, ...r }) => r),
      receipt: { commitment: toHex(res.commitment), r: toHex(res.r) },
      // check 6b (masked-sum.md §8): flagged here and in the result, never sent to any provider
      ...(table.noise ? { privacy: table.noise } : {}),
      plausibility: { implausible_values: res.implausible.length, cells: flagged.map((c) => ({ key: c.key, aggregates: c.implausible })) },
      timings
    }, null, 1) + '\n')
    audit.append('outcome', { session, data: { result: out, commitment: toHex(res.commitment), cells: table.cells.length } })
    o.emit({ v: 1, type: 'result', session, cells: table.cells.length, out, top: topCells(table), aggregates: table.aggregates, ...(table.noise ? { privacy: resultNoise(table.noise) } : {}) })
    return { out, provenance, session, table, timings }
  } catch (e) {
    if (e instanceof ProtocolAbort) {
      const bound = session ?? proposalHex
      const info = settle(e.info, self, bound ? fromHex(bound, 32) : null)
      // the abort's evidence bundle beside the output that was not written (README "Evidence")
      // (none for a failure of our own, an interrupt or a local error: it would prove nothing about anyone)
      const evidenceFile = `${out}.evidence.json`
      let saved: string | null = null
      if (info.reason !== 'local_error' || info.cause) {
        try {
          writeEvidence(evidenceFile, agent.identity.signer, bound, info)
          saved = evidenceFile
        } catch (w) {
          o.log(`could not save the evidence of the abort: ${(w as Error).message}`)
        }
      }
      audit.append('abort', { session: session ?? undefined, proposal: proposalHex ?? undefined, data: { ...info, ...(saved ? { evidence_file: saved } : {}) } })
      // providers waiting on streams the runner never took over learn at once, not at their timeout
      if (!sumStarted && session) { // before the agreement there is nothing on these streams to stop
        const sessionBytes = fromHex(session, 32)
        await Promise.all(msChannels.map((ch) => Promise.race([ch.send(encodeAbort(agent.identity.signer, sessionBytes, ch.remote, info)).catch(() => {}), new Promise((r) => setTimeout(r, 500))])))
      }
      const err = named(new ProtocolAbort(info), nameOf, saved)
      // a timeout or unreachable peer on a relayed link: say so, naming the relay (it, or the path
      // through it, may have failed rather than the peer)
      const silent = info.reason === 'timeout' || info.reason === 'unreachable' ? (info.accused ?? info.disputants?.[1] ?? null) : null
      const via = silent ? relayedVia.get(silent) : undefined
      if (via) err.message += ` (the link to ${nameOf(silent as string)} ran via relay ${via}: the relay or the path through it may have failed, not necessarily ${nameOf(silent as string)})`
      err.session = session // the end event carries the session once certified
      throw err
    }
    if (e instanceof PolicyRejected) throw new PolicyRejected(e.rejections.map((r) => ({ ...r, provider: nameOf(r.provider) })))
    throw e
  } finally {
    for (const e of early.values()) e.discard() // never taken: the negotiation failed
    for (const ch of channels) ch.abort(new Error('run finished'))
    // a stream torn down mid-transfer can leave libp2p's graceful stop waiting forever: bound it
    await Promise.race([Promise.resolve(node?.stop()).catch(() => {}), new Promise((r) => setTimeout(r, 3000))])
    lock.release()
  }
}

/**
 * The same abort, its message naming peers by their config names (the info keeps peer IDs): who is
 * proven at fault, or the dispute / silence it is, or whose relayed abort ended the run.
 */
function named(e: ProtocolAbort, nameOf: (id: string) => string, evidenceFile: string | null): ProtocolAbort {
  const names = (t: string): string => t.replace(/12D3Koo[1-9A-HJ-NP-Za-km-z]{40,}/g, (id) => (nameOf(id) === id ? id : nameOf(id)))
  const full = (id: string): string => (nameOf(id) === id ? id : `${nameOf(id)} (${id})`)
  const who = (a: { reason: string; accused: string | null; disputants?: [string, string] | null }): string => a.accused
    ? `accused ${full(a.accused)}, proven by its evidence`
    : a.disputants ? (a.reason === 'timeout' || a.reason === 'unreachable'
      ? `no answer from ${full(a.disputants[1])} (as seen by ${full(a.disputants[0])})`
      : `dispute between ${full(a.disputants[0])} and ${full(a.disputants[1])}`)
    : 'nobody accused (the protocol cannot attribute this)'
  const c = e.info.cause as AbortMessage | undefined
  const head = c && e.info.reason === 'peer_abort'
    ? `${c.by === e.info.by ? `${full(c.by)} aborted` : `${e.info.by ? full(e.info.by) : 'a peer'} relayed the abort of ${full(c.by)}`}: ${c.reason}, ${c.accused
      ? `${full(c.by)} claims ${full(c.accused)} is at fault (not checked here: \`mpc-agent evidence verify\` checks its evidence)`
      : who(c)}: ${names(c.detail)}`
    : `${e.info.reason}, ${who(e.info)}: ${names(e.info.detail)}`
  const out = new ProtocolAbort({ ...e.info, detail: names(e.info.detail) })
  out.message = `run aborted: ${head}${evidenceFile ? ` (evidence: ${evidenceFile}; check it with \`mpc-agent evidence verify\`)` : ''}`
  return out
}

export interface ResultDocument {
  query: { id: string; title: string; digest: string }
  session: string
  /** Cells check 6b flagged (masked-sum.md §8); present only when there are some. */
  implausible_cells?: number
  dims: Array<{ name: string; labels: string[] }>
  aggregates: Array<{ name: string; kind: string }>
  cells: ResultTable['cells']
  /** present when the query had a privacy section: every value is noisy (protocols/privacy.md §7) */
  privacy?: ResultTable['noise']
  provenance: string
}

/** The noise summary the result event carries for the TUI (only what it shows). */
function resultNoise(n: NonNullable<ResultTable['noise']>): ResultNoise {
  return {
    mechanism: n.mechanism, epsilon: n.epsilon, delta: n.delta,
    aggregates: Object.fromEntries(Object.entries(n.aggregates).map(([a, x]) => [a, { std: x.std, half_width_95: x.half_width_95 }]))
  }
}

/** The one line a buyer reads about the noise (text output). */
export function noiseLine(t: ResultTable): string {
  const n = t.noise
  if (!n) return ''
  const per = Object.entries(n.aggregates).map(([a, x]) => `${a} ±${x.half_width_95} (std ${x.std.toPrecision(3)})`).join(', ')
  const sup = t.cells.filter((c) => c.suppressed).length
  return `note: this result is NOISY (differential privacy, ${n.mechanism}, epsilon ${n.epsilon}, delta ${n.delta}); 95% of cells are within: ${per}${sup ? `; ${sup} cell(s) marked suppressed (noisy count below ${n.suppress_below})` : ''}`
}

export function resultDocument(q: Query, session: string, t: ResultTable, provenance: string): ResultDocument {
  const flagged = t.cells.filter((c) => c.implausible?.length).length
  return {
    query: { id: q.id, title: q.title, digest: toHex(queryDigest(q)) },
    session,
    ...(flagged ? { implausible_cells: flagged } : {}),
    dims: q.group_by.map((g) => ({ name: g.name, labels: domainLabels(g.domain) })),
    aggregates: q.aggregates.map((a) => ({ name: a.name, kind: a.kind })),
    cells: t.cells,
    ...(t.noise ? { privacy: t.noise } : {}),
    provenance
  }
}

async function dialWithRetry(node: AgentNode, addr: string, protocol: string, retry: number, signal: AbortSignal, name: string, log: (l: string) => void): Promise<Channel> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openChannel(node, addr, protocol, { signal })
    } catch (e) {
      if (!(e instanceof PeerUnreachableError) || attempt >= retry) {
        if (e instanceof PeerUnreachableError) throw new PeerUnreachableError(name, e.detail)
        throw e
      }
      const wait = Math.min(8000, 500 * 2 ** attempt)
      log(`${name} unreachable, retrying in ${wait} ms (${attempt + 1}/${retry})`)
      await new Promise((r) => setTimeout(r, wait))
    }
  }
}
