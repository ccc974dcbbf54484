// init, id: create and show an agent's identity; `id --entry` prints the signed entry others import.
import { describeReach, type ReachReport } from '../../reach/report.ts'
import { existsSync } from 'node:fs'
import { homePaths, createIdentity, loadIdentity } from '../../agent/home.ts'
import { saveConfig, validateListen, validateName, loadConfig, DEFAULT_LISTEN, type Role } from '../../agent/config.ts'
import { readRuntime } from '../../agent/agent.ts'
import { ConfigError } from '../../agent/errors.ts'
import { unfitForOthers } from '../../agent/peer-entry.ts'
import { ENTRY_LIMITS, parseTtl, signPeerEntryV2, type PolicySummary, type SignedPeerEntryV2 } from '../../agent/peer-entry-v2.ts'
import { DurableStore } from '../../agent/store.ts'
import { loadPolicy } from '../../policy/policy.ts'
import { resolverFor } from '../../agent/context.ts'
import { openAgent } from '../../agent/agent.ts'
import type { Output } from '../output.ts'

export interface InitOptions {
  name: string
  role?: Role
  listen?: string[]
  announce?: string[]
  force?: boolean
}

export async function initCommand(home: string, o: InitOptions, out: Output): Promise<void> {
  const paths = homePaths(home)
  const name = validateName(o.name, '--name')
  const listen = (o.listen?.length ? o.listen : [DEFAULT_LISTEN]).map((a) => validateListen(a, '--listen'))
  const announce = (o.announce ?? []).map((a) => validateListen(a, '--announce'))
  if (existsSync(paths.config) && !o.force) {
    throw new ConfigError(`${paths.config} already exists; pass --force to re-initialise this home`)
  }
  // a new identity under a running serve would leave it answering with the old key while every
  // other command signs with the new one
  const running = readRuntime(paths)
  if (running) throw new ConfigError(`serve (pid ${running.pid}) is running on ${paths.dir}: stop it before \`init --force\``)
  const id = await createIdentity(paths, o.force)
  saveConfig(paths.config, { name, ...(o.role ? { role: o.role } : {}), listen, announce, peers: [], datasets: {} })
  out.log(`created ${paths.key} (mode 0600) and ${paths.config}`)
  warnUnfit(announce.length ? announce : listen, announce.length ? 'another --announce' : '--listen or --announce')
  if (out.opts.json) out.data({ peerId: id.peerId, home: paths.dir })
  else out.result(id.peerId)
}

/** The addresses others should dial: announced ones, else what serve bound, else the configured listen addresses. */
function addressesForOthers(home: string): { name: string; role: Role | undefined; peerId: string; addrs: string[]; serving: boolean; reachability?: ReachReport } {
  const paths = homePaths(home)
  const id = loadIdentity(paths)
  const cfg = loadConfig(paths.config)
  const running = readRuntime(paths)
  const withId = (a: string): string => (a.includes('/p2p/') ? a : `${a}/p2p/${id.peerId}`)
  const base = cfg.announce.length ? cfg.announce.map(withId) : (running?.addrs ?? cfg.listen.map(withId))
  // behind NAT (relays configured, nothing announced): the relayed addresses of the running serve
  // come first, since an importer dials the first fit address (README "Across firewalls")
  const circuit = (running?.addrs ?? []).filter((a) => a.includes('/p2p-circuit'))
  const direct = base.filter((a) => !a.includes('/p2p-circuit'))
  const addrs = (cfg.relays ?? []).length && !cfg.announce.length ? [...circuit, ...direct] : [...direct, ...circuit]
  return { name: cfg.name, role: cfg.role, peerId: id.peerId, addrs, serving: running != null, ...(running?.reach ? { reachability: running.reach } : {}) }
}

/** Warn (stderr, even under --json: it is about a document meant for others) on undialable addresses. */
function warnUnfit(addrs: string[], fix: string): void {
  for (const a of addrs) {
    const why = unfitForOthers(a)
    if (why) process.stderr.write(`mpc-agent: warning: ${a}: ${why} (set ${fix})\n`)
  }
}

/** Default validity of `id --entry` (handed over by hand, imported within days) and of `peers publish`. */
export const ENTRY_TTL_DEFAULT = '30d'

/** The next seq of this agent's entries: the time in ms, or one above the last, whichever is higher (durable). */
function nextEntrySeq(statePath: string): number {
  const store = DurableStore.open(statePath)
  return store.transact((view) => {
    const last = (view.get('self', 'entry-seq')?.val as number | undefined) ?? 0
    const seq = Math.max(view.now, last + 1)
    // kept far beyond any entry's validity: a seq must never repeat for this identity
    return { ops: [{ op: 'put', ns: 'self', key: 'entry-seq', exp: view.now + 100 * 365 * 86_400_000, val: seq }], result: seq }
  })
}

/** What `--offer` adds: the datasets policy.yaml has rules for, and a summary of that policy (claims). */
function offerOf(home: string): { datasets: string[]; policy: PolicySummary } {
  const agent = openAgent(home)
  const policy = loadPolicy(agent.paths.policy, resolverFor(agent))
  const datasets = Object.keys(policy.datasets).slice(0, ENTRY_LIMITS.datasets)
  return {
    datasets,
    policy: { approval: policy.approval, min_providers: policy.min_providers, max_cells: policy.max_cells, dp_required: policy.privacy?.required === true }
  }
}

export interface EntryOptions {
  role?: Role
  /** Validity such as "12h" or "7d" (default ENTRY_TTL_DEFAULT). */
  ttl?: string
  /** Add the datasets offered and the policy summary. */
  offer?: boolean
}

/**
 * This agent's own entry, freshly signed (v2, protocols/directory.md §2): addresses others can dial
 * (unfit ones are left out with a warning; none left is an error), a new seq, an expiry.
 */
export function signOwnEntry(home: string, o: EntryOptions): SignedPeerEntryV2 {
  const info = addressesForOthers(home)
  const role = o.role ?? info.role
  if (!role) throw new ConfigError('the entry needs this agent\'s role: pass --role provider|buyer (or set `role:` in config.yaml)')
  const ttlS = parseTtl(o.ttl ?? ENTRY_TTL_DEFAULT)
  warnUnfit(info.addrs, '`announce:` in config.yaml, or init with --announce')
  const fit = info.addrs.filter((a) => unfitForOthers(a) == null)
  if (!fit.length) throw new ConfigError(`none of ${info.name}'s addresses can be dialled by others (${info.addrs.join(', ')}): set \`announce:\` in config.yaml (or init with --announce), or run \`mpc-agent serve\` so the bound port is known`)
  if (fit.length > ENTRY_LIMITS.addrs) process.stderr.write(`mpc-agent: warning: only the first ${ENTRY_LIMITS.addrs} of ${fit.length} addresses go into the entry\n`)
  const paths = homePaths(home)
  const offer = o.offer ? offerOf(home) : undefined
  return signPeerEntryV2(loadIdentity(paths).signer, {
    name: info.name,
    addrs: fit.slice(0, ENTRY_LIMITS.addrs),
    role,
    seq: nextEntrySeq(paths.state),
    exp: Math.floor(Date.now() / 1000) + ttlS,
    ...(offer ? offer : {})
  })
}

export function idCommand(home: string, o: { entry?: boolean } & EntryOptions, out: Output): void {
  if (o.entry) {
    const entry = signOwnEntry(home, o)
    // the entry is a document to hand to others: always JSON, one line, importable as is
    out.data(entry)
    return
  }
  const info = addressesForOthers(home)
  warnUnfit(info.addrs, '`announce:` in config.yaml, or init with --announce')
  // how others reach this agent: through the relays serve holds a reservation on (README "Across firewalls"),
  // and directly as far as a relay's dial-back found (protocols/reach.md; serve checks once at start)
  const relayed = info.addrs.filter((a) => a.includes('/p2p-circuit')).length
  const check = info.reachability
  const directly = check ? describeReach(check) : 'not checked (no relay to dial this agent back: README "Across firewalls")'
  const reach = !info.serving ? 'unknown: serve is not running'
    : relayed ? `through ${relayed} relayed address${relayed === 1 ? '' : 'es'} (serve holds the reservation); ${directly}`
      : check ? describeReach(check) : 'directly only (no relay reservation held; reachability from outside not checked)'
  if (out.opts.json) {
    out.data({ ...info, reach })
    return
  }
  out.result([`name    ${info.name}`, `peer    ${info.peerId}`, ...(info.role ? [`role    ${info.role}`] : []), ...info.addrs.map((a) => `addr    ${a}`), `reach   ${reach}`].join('\n'))
}
