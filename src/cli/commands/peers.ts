// peers add | import | list | remove: the allowlist of who may connect, and in which role.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { homePaths } from '../../agent/home.ts'
import { loadConfig, saveConfig, validatePeer, type PeerEntry } from '../../agent/config.ts'
import { ConfigError } from '../../agent/errors.ts'
import type { Output } from '../output.ts'

function merge(existing: PeerEntry[], added: PeerEntry[], self: string): PeerEntry[] {
  const out = [...existing]
  for (const p of added) {
    if (p.name === self) continue // importing a shared directory may include ourselves
    const byName = out.findIndex((q) => q.name === p.name)
    const byId = out.findIndex((q) => q.peerId === p.peerId)
    if (byId >= 0 && byId !== byName) throw new ConfigError(`peer ID ${p.peerId} is already configured as "${out[byId]?.name}"`)
    if (byName >= 0) out[byName] = p
    else out.push(p)
  }
  return out
}

export function peersAdd(home: string, name: string, addr: string, role: string, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const p = validatePeer({ name, addr, role }, 'peers add')
  cfg.peers = merge(cfg.peers, [p], '')
  saveConfig(paths.config, cfg)
  out.log(`added ${p.role} ${p.name} (${p.peerId})`)
}

/** Many peers at once from a YAML/JSON list of {name, addr, role} (50 providers need one command, not 2,450). */
export function peersImport(home: string, file: string, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  let raw: unknown
  try {
    raw = parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new ConfigError(`cannot read peer list ${file}: ${(e as Error).message.split('\n')[0]}`)
  }
  const list = Array.isArray(raw) ? raw : (raw as { peers?: unknown })?.peers
  if (!Array.isArray(list)) throw new ConfigError(`${file}: expected a list of {name, addr, role} (or {peers: [...]})`)
  const peers = list.map((p, i) => validatePeer(p, `${file}[${i}]`))
  const self = peers.filter((p) => p.name === cfg.name)
  cfg.peers = merge(cfg.peers, peers, cfg.name)
  saveConfig(paths.config, cfg)
  out.log(`imported ${peers.length - self.length} peers into ${paths.config}`)
}

export function peersList(home: string, out: Output): void {
  const cfg = loadConfig(homePaths(home).config)
  if (out.opts.json) return out.data(cfg.peers.map(({ name, addr, peerId, role }) => ({ name, addr, peerId, role })))
  if (!cfg.peers.length) return out.result('(no peers: add one with `mpc-agent peers add NAME MULTIADDR --role provider|buyer`)')
  out.result(cfg.peers.map((p) => `${p.name.padEnd(20)} ${p.role.padEnd(9)} ${p.addr}`).join('\n'))
}

export function peersRemove(home: string, name: string, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const n = cfg.peers.length
  cfg.peers = cfg.peers.filter((p) => p.name !== name && p.peerId !== name)
  if (cfg.peers.length === n) throw new ConfigError(`no peer named "${name}": see \`mpc-agent peers list\``)
  saveConfig(paths.config, cfg)
  out.log(`removed ${name}`)
}
