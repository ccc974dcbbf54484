// query check | run, policy check: the buyer's and the provider's view of one query file.
import { openAgent } from '../../agent/agent.ts'
import { peerNamer, resolverFor } from '../../agent/context.ts'
import { DurableStore } from '../../agent/store.ts'
import { AdmissionStore, sourceId } from '../../agent/admission.ts'
import { validateDatasets } from '../../data/source.ts'
import { ConfigError } from '../../agent/errors.ts'
import { runQuery } from '../../agent/run.ts'
import { loadQueryFile } from '../../query/parse.ts'
import { queryDigest } from '../../query/validate.ts'
import { layoutOf } from '../../query/layout.ts'
import { canonicalize } from '../../crypto/canonical.ts'
import { toHex } from '../../crypto/bytes.ts'
import { loadPolicy } from '../../policy/policy.ts'
import { evaluatePolicy, describeProposal, type PolicyContext } from '../../policy/evaluate.ts'
import { PolicyRejected, ProtocolAbort } from '../../protocol/errors.ts'
import type { RunEvent } from '../../agent/events.ts'
import { exitCodeOf } from '../exit-codes.ts'
import { interactive } from '../output.ts'
import type { BuyerHooks } from '../../protocol/masked-sum-buyer.ts'
import type { Output } from '../output.ts'

export function queryCheck(home: string, file: string, out: Output): void {
  const agent = openAgent(home)
  const q = loadQueryFile(file, agent.identity.peerId, resolverFor(agent))
  const layout = layoutOf(q)
  const digest = toHex(queryDigest(q))
  if (out.opts.json) {
    out.data({ ok: true, digest, cells: layout.cells, slots: layout.slots.length, length: layout.length, canonical: q })
    return
  }
  out.result(canonicalize(q))
  out.log(`valid: ${layout.cells} cells × ${layout.slots.length} slots = ${layout.length} values per provider; digest ${digest}`)
}

export async function queryRun(
  home: string,
  file: string,
  o: { out?: string; format: 'json' | 'csv'; retry: number },
  out: Output,
  signal: AbortSignal,
  hooks?: BuyerHooks
): Promise<void> {
  const agent = openAgent(home)
  // a person at a terminal gets the live ink view; scripts (no TTY, --json, CI) never load ink
  let ui: { done(): Promise<void> } | null = null
  const listeners = new Set<(e: RunEvent) => void>()
  if (interactive(out)) {
    const q = loadQueryFile(file, agent.identity.peerId, resolverFor(agent))
    const nameOf = peerNamer(agent)
    const { renderRun } = await import('../../ui/render.ts')
    ui = await renderRun(q.title, q.participants.providers.map((id) => ({ id, name: nameOf(id) })), (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    })
  }
  const emit = (e: RunEvent): void => {
    out.event(e)
    for (const l of listeners) l(e)
  }
  try {
    const res = await runQuery(agent, { queryFile: file, out: o.out, format: o.format, retry: o.retry, emit, log: (l) => { if (!ui) out.log(l) }, signal, hooks })
    if (!ui) out.log(`wrote ${res.out} (${res.table.cells.length} cells) and ${res.provenance}`)
    out.result(res.out)
  } catch (e) {
    if (ui) {
      const code = exitCodeOf(e)
      if (e instanceof ProtocolAbort) emit({ v: 1, type: 'abort', session: null, abort: e.info, exitCode: code })
      else emit({ v: 1, type: 'error', message: (e as Error).message, exitCode: code })
    } else if (e instanceof ProtocolAbort && out.opts.json) {
      out.event({ v: 1, type: 'abort', session: null, abort: e.info, exitCode: exitCodeOf(e) })
    }
    throw e
  } finally {
    await ui?.done()
  }
}

export function policyCheck(home: string, file: string, o: { buyer?: string }, out: Output): void {
  const agent = openAgent(home)
  const resolve = resolverFor(agent)
  const buyerName = o.buyer ?? agent.config.peers.find((p) => p.role === 'buyer')?.name
  if (!buyerName) throw new ConfigError('no buyer to check against: pass --buyer NAME (a configured peer)')
  const buyer = resolve(buyerName)
  if (!buyer) throw new ConfigError(`unknown buyer "${buyerName}": see \`mpc-agent peers list\``)
  const q = loadQueryFile(file, buyer, resolve)
  const policy = loadPolicy(agent.paths.policy, resolve)
  const decision = evaluatePolicy(policy, {
    query: q, buyer, self: agent.identity.peerId,
    configuredPeers: new Map(agent.config.peers.map((p) => [p.peerId, p.role])),
    now: Date.now(), ...admissionState(agent.paths.state, agent.config.datasets, agent.paths.dir, q.dataset)
  })
  const nameOf = peerNamer(agent)
  if (out.opts.json) out.data({ accept: decision.accept, reasons: decision.reasons })
  else for (const l of describeProposal(q, nameOf)) out.log(l)
  if (!decision.accept) throw new PolicyRejected([{ provider: agent.config.name, reasons: decision.reasons }])
  out.result('policy: accept')
}

/** Run counts, pins and the dataset's resolved source from the durable store, so `policy check` answers as serve would. */
function admissionState(state: string, datasets: Record<string, unknown>, dir: string, dataset: string): Pick<PolicyContext, 'history' | 'pins' | 'source'> {
  const src = validateDatasets(datasets, dir)[dataset]
  const admissions = new AdmissionStore(DurableStore.open(state))
  return { history: { certifiedRunsByBuyerSince: (b) => admissions.runsBy(b) }, pins: admissions.list(), source: src ? sourceId(src) : undefined }
}
