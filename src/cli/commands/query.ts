// query check | run, policy check: the buyer's and the provider's view of one query file.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { openAgent } from '../../agent/agent.ts'
import { peerNamer, resolverFor } from '../../agent/context.ts'
import { DurableStore } from '../../agent/store.ts'
import { AdmissionStore, sourceId } from '../../agent/admission.ts'
import { validateDatasets } from '../../data/source.ts'
import { ConfigError } from '../../agent/errors.ts'
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

/** How long a connected provider may take to decide before the buyer says whom it waits for. */
const WAITING_NOTICE_MS = 3000

/** Where each provider stands, from the run's own events: what --timeout names as still pending. */
function pendingTracker(providers: string[]): { see(e: RunEvent): void; pending(): string[]; undecided(): string[] } {
  const stage = new Map<string, string>(providers.map((p) => [p, 'not connected']))
  return {
    see(e) {
      if (e.type === 'peer' && stage.has(e.peer)) {
        stage.set(e.peer, e.state === 'connecting' ? 'not connected' : e.state === 'connected' ? 'no decision yet' : e.state === 'done' ? 'done' : 'failed')
      } else if (e.type === 'decision' && stage.has(e.provider)) {
        stage.set(e.provider, e.decision === 'accept' ? 'vector not received' : 'rejected')
      }
    },
    // while anyone has not decided, the run waits for them (the others have done their part so far)
    pending: () => {
      const open = [...stage].filter(([, s]) => s !== 'done' && s !== 'rejected')
      const blocking = open.filter(([, s]) => s === 'not connected' || s === 'no decision yet')
      return (blocking.length ? blocking : open).map(([p, s]) => `${p} (${s})`)
    },
    undecided: () => [...stage].filter(([, s]) => s === 'no decision yet').map(([p]) => p)
  }
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
  const toStdout = o.out === '-'
  if (toStdout && out.opts.json) throw new ConfigError('--out - writes the result to stdout, and so does --json: use one of them')
  const q = loadQueryFile(file, agent.identity.peerId, resolverFor(agent))
  const nameOf = peerNamer(agent)
  const tracker = pendingTracker(q.participants.providers)
  // a person at a terminal gets the live ink view; scripts (no TTY, --json, CI) never load ink
  let ui: { done(): Promise<void> } | null = null
  const listeners = new Set<(e: RunEvent) => void>()
  if (interactive(out)) {
    const { renderRun } = await import('../../ui/render.ts')
    ui = await renderRun(q.title, q.participants.providers.map((id) => ({ id, name: nameOf(id) })), (l) => {
      listeners.add(l)
      return () => listeners.delete(l)
    })
  }
  const names: Record<string, string> = Object.fromEntries([q.participants.buyer, ...q.participants.providers].map((id) => [id, nameOf(id)]))
  const emit = (e0: RunEvent): void => {
    // end events name the peers next to their IDs (the scripting contract, README "--json events")
    const e: RunEvent = e0.type === 'result' || e0.type === 'abort' || e0.type === 'error' ? { ...e0, names } : e0
    tracker.see(e)
    out.event(e)
    for (const l of listeners) l(e)
  }
  // --out -: the result goes to stdout; it is written atomically in a private directory first, and
  // its provenance is kept in the working directory as <query id>.provenance.json
  const scratch = toStdout ? mkdtempSync(join(tmpdir(), 'mpc-agent-out-')) : null
  // a provider whose policy says `approval: manual` holds the proposal until its operator decides:
  // say so rather than show nothing (once per provider, after WAITING_NOTICE_MS)
  const started = Date.now()
  const noticed = new Set<string>()
  const waiting = setInterval(() => {
    if (Date.now() - started < WAITING_NOTICE_MS) return
    for (const p of tracker.undecided()) {
      if (noticed.has(p)) continue
      noticed.add(p)
      const seconds = Math.round((Date.now() - started) / 1000)
      emit({ v: 1, type: 'waiting', peer: p, name: nameOf(p), seconds })
      if (!ui) out.log(`waiting for ${nameOf(p)}'s decision (${seconds} s): if its policy says approval: manual, its operator must run \`mpc-agent approve\``)
    }
  }, 1000)
  waiting.unref()
  try {
    const target = scratch ? join(scratch, `${q.id}.${o.format}`) : o.out
    const { runQuery } = await import('../../agent/run.ts') // with libp2p: query check / policy check never load it
    const res = await runQuery(agent, { queryFile: file, out: target, format: o.format, retry: o.retry, emit, log: (l) => { if (!ui) out.log(l) }, signal, hooks })
    if (scratch) {
      const kept = resolve(`${q.id}.provenance.json`)
      copyFileSync(res.provenance, kept)
      if (!ui) out.log(`${res.table.cells.length} cells; provenance in ${kept}`)
      process.stdout.write(readFileSync(res.out))
    } else {
      if (!ui) out.log(`wrote ${res.out} (${res.table.cells.length} cells) and ${res.provenance}`)
      // -q is for scripts that want the numbers: print the result itself, not where it went
      if (out.opts.quiet) process.stdout.write(readFileSync(res.out))
      else out.result(res.out)
    }
  } catch (e0) {
    let e = e0
    // --timeout: say who the run was still waiting for
    if (e instanceof ProtocolAbort && e.info.reason === 'timeout' && e.info.accused == null && /--timeout/.test(e.info.detail)) {
      const pending = tracker.pending().map((p) => p.replace(/^\S+/, (id) => nameOf(id)))
      if (pending.length) {
        const info = { ...e.info, detail: `${e.info.detail}; still pending: ${pending.join(', ')}` }
        e = Object.assign(new ProtocolAbort(info), { message: `run aborted: timeout: ${info.detail}`, session: e.session })
      }
    }
    const interrupted = signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'Interrupted'
    if (interrupted) {
      // main() writes the one end event of an interrupted run (exit 130/143)
    } else if (ui) {
      const code = exitCodeOf(e)
      if (e instanceof ProtocolAbort) emit({ v: 1, type: 'abort', session: e.session, abort: e.info, exitCode: code })
      else emit({ v: 1, type: 'error', message: (e as Error).message, exitCode: code })
    } else if (e instanceof ProtocolAbort && out.opts.json) {
      out.event({ v: 1, type: 'abort', session: e.session, abort: e.info, exitCode: exitCodeOf(e), names })
    }
    throw e
  } finally {
    clearInterval(waiting)
    await ui?.done()
    if (scratch) rmSync(scratch, { recursive: true, force: true })
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
