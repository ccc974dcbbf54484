// peers add | import | list | remove: the allowlist of who may connect, and in which role.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { homePaths, loadIdentity } from '../../agent/home.ts'
import { loadConfig, saveConfig, validatePeer, yamlErrorLine, type PeerEntry } from '../../agent/config.ts'
import { ConfigError } from '../../agent/errors.ts'
import { importItems, parseImportItem, unfitForOthers, type ImportedPeer } from '../../agent/peer-entry.ts'
import { readRuntime } from '../../agent/agent.ts'
import type { Output } from '../output.ts'

export interface PeerChange {
  name: string
  change: 'added' | 'updated' | 'unchanged' | 'skipped'
  detail: string
}

/**
 * Merge `added` into `existing`, describing every change. An existing peer's ID or role is never
 * changed without `force` (a changed ID is a different key: exactly what an attacker who can edit
 * the shared peer list would want us to accept quietly). All-or-nothing: throws before any change.
 */
export function mergePeers(existing: PeerEntry[], added: PeerEntry[], self: { name: string; peerId: string }, force: boolean): { peers: PeerEntry[]; changes: PeerChange[] } {
  const out = [...existing]
  const changes: PeerChange[] = []
  for (const p of added) {
    if (p.name === self.name || p.peerId === self.peerId) { // a shared directory may include ourselves
      changes.push({ name: p.name, change: 'skipped', detail: 'this agent' })
      continue
    }
    const byName = out.findIndex((q) => q.name === p.name)
    const byId = out.findIndex((q) => q.peerId === p.peerId)
    if (byId >= 0 && byId !== byName) {
      if (!force) throw new ConfigError(`peer ID ${p.peerId} is already configured as "${out[byId]?.name}", not "${p.name}": pass --force to rename it`)
      out.splice(byId, 1)
      return mergePeers(out, added, self, force)
    }
    const old = byName >= 0 ? out[byName] : undefined
    if (!old) {
      out.push({ name: p.name, addr: p.addr, peerId: p.peerId, role: p.role })
      changes.push({ name: p.name, change: 'added', detail: `${p.role} ${p.peerId} at ${p.addr}` })
      continue
    }
    const diffs: string[] = []
    if (old.peerId !== p.peerId) {
      if (!force) throw new ConfigError(`peer "${p.name}" is configured with ID ${old.peerId}; the new entry says ${p.peerId} (a different key): pass --force if ${p.name} really re-created its identity`)
      diffs.push(`peer ID ${old.peerId} → ${p.peerId}`)
    }
    if (old.role !== p.role) {
      if (!force) throw new ConfigError(`peer "${p.name}" is configured as ${old.role}; the new entry says ${p.role}: pass --force to change its role`)
      diffs.push(`role ${old.role} → ${p.role}`)
    }
    if (old.addr !== p.addr) diffs.push(`address ${old.addr} → ${p.addr}`)
    out[byName] = { name: p.name, addr: p.addr, peerId: p.peerId, role: p.role }
    changes.push({ name: p.name, change: diffs.length ? 'updated' : 'unchanged', detail: diffs.join(', ') })
  }
  return { peers: out, changes }
}

function report(changes: PeerChange[], out: Output, servePid: number | null): void {
  if (out.opts.json) out.data({ changes })
  for (const c of changes) {
    out.log(`${c.change.padEnd(9)} ${c.name}${c.detail ? `: ${c.detail}` : ''}`)
  }
  if (servePid != null && changes.some((c) => c.change === 'added' || c.change === 'updated')) {
    out.log(`serve (pid ${servePid}) runs on this home: \`kill -HUP ${servePid}\` makes it reload config.yaml`)
  }
}

function warnAddr(addr: string, name: string): void {
  const why = unfitForOthers(addr)
  if (why) process.stderr.write(`mpc-agent: warning: ${name}'s address ${addr}: ${why}\n`)
}

export function peersAdd(home: string, name: string, addr: string, role: string, o: { force?: boolean }, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const p = validatePeer({ name, addr, role }, 'peers add')
  warnAddr(p.addr, p.name)
  const { peers, changes } = mergePeers(cfg.peers, [p], { name: cfg.name, peerId: '' }, !!o.force)
  cfg.peers = peers
  saveConfig(paths.config, cfg)
  report(changes, out, readRuntime(paths)?.pid ?? null)
}

/**
 * Many peers at once: signed entries (`mpc-agent id --entry`, one per line or a list), the output of
 * `mpc-agent peers list --json`, or a YAML/JSON list of {name, addr, role}. 50 providers need one
 * command, not 2,450.
 */
export function peersImport(home: string, files: string[], o: { force?: boolean }, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const items: ImportedPeer[] = []
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8')
    } catch (e) {
      throw new ConfigError(`cannot read peer list ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`)
    }
    // NDJSON (entries appended one per line: `mpc-agent id --entry >> peers.ndjson`) or one YAML/JSON document
    const lines = text.split('\n').filter((l) => l.trim() !== '')
    const ndjson = lines.length > 1 && lines.every((l) => l.trimStart().startsWith('{'))
    const docs: unknown[] = []
    try {
      if (ndjson) for (const l of lines) docs.push(JSON.parse(l))
      else docs.push(parse(text))
    } catch (e) {
      throw new ConfigError(`${file}: not valid YAML/JSON: ${yamlErrorLine(e)}`)
    }
    let i = 0
    for (const d of docs) for (const item of importItems(d, file)) items.push(parseImportItem(item, `${file}[${i++}]`))
  }
  for (const p of items) if (!p.signed && p.name !== cfg.name) out.log(`note: ${p.name}'s entry is not signed (a plain peer list): check its peer ID ${p.peerId} with ${p.name}`)
  const { peers, changes } = mergePeers(cfg.peers, items, { name: cfg.name, peerId: loadIdentity(paths).peerId }, !!o.force)
  cfg.peers = peers
  saveConfig(paths.config, cfg)
  report(changes, out, readRuntime(paths)?.pid ?? null)
  const n = changes.filter((c) => c.change === 'added' || c.change === 'updated').length
  if (!out.opts.json) out.result(`${n} peer${n === 1 ? '' : 's'} added or updated in ${paths.config}`)
}

export function peersList(home: string, out: Output): void {
  const cfg = loadConfig(homePaths(home).config)
  if (out.opts.json) return out.data(cfg.peers.map(({ name, addr, peerId, role }) => ({ name, addr, peerId, role })))
  if (!cfg.peers.length) return out.result('(no peers: import entries with `mpc-agent peers import FILE`, or `mpc-agent peers add NAME MULTIADDR --role provider|buyer`)')
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
  const pid = readRuntime(paths)?.pid
  if (pid != null) out.log(`serve (pid ${pid}) runs on this home: \`kill -HUP ${pid}\` makes it reload config.yaml and close ${name}'s connections`)
}
