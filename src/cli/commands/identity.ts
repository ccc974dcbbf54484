// init, id: create and show an agent's identity; `id --entry` prints the signed entry others import.
import { existsSync } from 'node:fs'
import { homePaths, createIdentity, loadIdentity } from '../../agent/home.ts'
import { saveConfig, validateListen, validateName, loadConfig, DEFAULT_LISTEN, type Role } from '../../agent/config.ts'
import { readRuntime } from '../../agent/agent.ts'
import { ConfigError } from '../../agent/errors.ts'
import { signPeerEntry, unfitForOthers } from '../../agent/peer-entry.ts'
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
function addressesForOthers(home: string): { name: string; role: Role | undefined; peerId: string; addrs: string[]; serving: boolean } {
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
  return { name: cfg.name, role: cfg.role, peerId: id.peerId, addrs, serving: running != null }
}

/** Warn (stderr, even under --json: it is about a document meant for others) on undialable addresses. */
function warnUnfit(addrs: string[], fix: string): void {
  for (const a of addrs) {
    const why = unfitForOthers(a)
    if (why) process.stderr.write(`mpc-agent: warning: ${a}: ${why} (set ${fix})\n`)
  }
}

export function idCommand(home: string, o: { entry?: boolean; role?: Role }, out: Output): void {
  const info = addressesForOthers(home)
  if (o.entry) {
    const role = o.role ?? info.role
    if (!role) throw new ConfigError('the entry needs this agent\'s role: pass --role provider|buyer (or set `role:` in config.yaml)')
    const paths = homePaths(home)
    const entry = signPeerEntry(loadIdentity(paths).signer, { name: info.name, addrs: info.addrs, role })
    warnUnfit(info.addrs, '`announce:` in config.yaml, or init with --announce')
    // the entry is a document to hand to others: always JSON, one line, importable as is
    out.data(entry)
    return
  }
  warnUnfit(info.addrs, '`announce:` in config.yaml, or init with --announce')
  // how others reach this agent: through the relays serve holds a reservation on (README "Across firewalls");
  // whether the direct addresses are reachable from outside is not measured (no AutoNAT: SECURITY.md "Relays")
  const relayed = info.addrs.filter((a) => a.includes('/p2p-circuit')).length
  const reach = relayed ? `through ${relayed} relayed address${relayed === 1 ? '' : 'es'} (serve holds the reservation); direct reachability not measured` : info.serving ? 'directly only (no relay reservation held)' : 'unknown: serve is not running'
  if (out.opts.json) {
    out.data({ ...info, reach })
    return
  }
  out.result([`name    ${info.name}`, `peer    ${info.peerId}`, ...(info.role ? [`role    ${info.role}`] : []), ...info.addrs.map((a) => `addr    ${a}`), `reach   ${reach}`].join('\n'))
}
