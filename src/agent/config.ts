// config.yaml of an agent home: name, listen addresses, known peers (the allowlist), datasets.
// Validated strictly: unknown keys, bad multiaddrs and missing peer IDs are configuration errors.
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from './errors.ts'
import { parsePeer } from '../crypto/peer.ts'
import { DEFAULT_PORT } from './defaults.ts'
import { yamlErrorLine } from '../util/yaml-error.ts'

export { yamlErrorLine }

export type Role = 'provider' | 'buyer'

export interface PeerEntry {
  name: string
  /** Full multiaddr ending in /p2p/<peer-id>. */
  addr: string
  peerId: string
  role: Role
}

export interface AgentConfig {
  name: string
  /** This agent's own role, as its signed entry (`id --entry`) tells others; optional. */
  role?: Role
  listen: string[]
  /** Addresses others should dial when they differ from `listen` (port forward, DNS name). */
  announce: string[]
  peers: PeerEntry[]
  /** Logical dataset name → source; validated by the data layer when used. */
  datasets: Record<string, unknown>
  /** Circuit relays this agent listens through (README "Across firewalls"); [] = reached directly. */
  relays?: RelayEntry[]
}

export interface RelayEntry {
  name: string
  /** The relay's multiaddr ending in /p2p/<relay peer ID> (`mpc-agent relay id`). */
  addr: string
  peerId: string
}

export { DEFAULT_PORT }
export const DEFAULT_LISTEN = `/ip4/127.0.0.1/tcp/${DEFAULT_PORT}`

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function onlyKeys(where: string, v: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ConfigError(`${where}: unknown key "${k}" (allowed: ${allowed.join(', ')})`)
  }
}

export function validateName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConfigError(`${where}: name must be 1-64 characters of letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`)
  }
  return name
}

export function validateListen(addr: unknown, where: string): string {
  if (typeof addr !== 'string') throw new ConfigError(`${where}: expected a multiaddr string`)
  try {
    multiaddr(addr)
  } catch {
    throw new ConfigError(`${where}: "${addr}" is not a multiaddr (example: /ip4/127.0.0.1/tcp/4001)`)
  }
  return addr
}

export function validatePeer(raw: unknown, where: string): PeerEntry {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected {name, addr, role}`)
  onlyKeys(where, raw, ['name', 'addr', 'role'])
  const name = validateName(raw.name, `${where}.name`)
  const addr = validateListen(raw.addr, `${where}.addr`)
  const p2p = multiaddr(addr).getComponents().findLast((c) => c.name === 'p2p')?.value // the peer, after any relay's /p2p/…/p2p-circuit
  if (!p2p) throw new ConfigError(`${where}.addr: "${addr}" has no /p2p/<peer-id>: append the peer's ID as printed by \`mpc-agent id\``)
  try {
    parsePeer(p2p)
  } catch (e) {
    throw new ConfigError(`${where}.addr: ${(e as Error).message}`)
  }
  if (raw.role !== 'provider' && raw.role !== 'buyer') {
    throw new ConfigError(`${where}.role: must be "provider" or "buyer", got ${JSON.stringify(raw.role)}`)
  }
  return { name, addr, peerId: p2p, role: raw.role }
}

export function validateRelay(raw: unknown, where: string): RelayEntry {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected {name, addr}`)
  onlyKeys(where, raw, ['name', 'addr'])
  const name = validateName(raw.name, `${where}.name`)
  const addr = validateListen(raw.addr, `${where}.addr`)
  const comps = multiaddr(addr).getComponents()
  if (comps.some((c) => c.name === 'p2p-circuit')) throw new ConfigError(`${where}.addr: give the relay's own address (\`mpc-agent relay id\`), without /p2p-circuit`)
  const p2p = comps.find((c) => c.name === 'p2p')?.value
  if (!p2p) throw new ConfigError(`${where}.addr: "${addr}" has no /p2p/<relay peer ID>: append the relay's ID as printed by \`mpc-agent relay id\``)
  try {
    parsePeer(p2p)
  } catch (e) {
    throw new ConfigError(`${where}.addr: ${(e as Error).message}`)
  }
  return { name, addr, peerId: p2p }
}

export function validateConfig(raw: unknown, where = 'config.yaml'): AgentConfig {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected a mapping with name, listen, peers`)
  onlyKeys(where, raw, ['name', 'role', 'listen', 'announce', 'peers', 'datasets', 'relays'])
  const name = validateName(raw.name, `${where}: name`)
  if (raw.role !== undefined && raw.role !== 'provider' && raw.role !== 'buyer') {
    throw new ConfigError(`${where}: role must be "provider" or "buyer", got ${JSON.stringify(raw.role)}`)
  }
  const listenRaw = raw.listen ?? [DEFAULT_LISTEN]
  if (!Array.isArray(listenRaw) || listenRaw.length === 0) throw new ConfigError(`${where}: listen must be a non-empty list of multiaddrs`)
  const listen = listenRaw.map((a, i) => validateListen(a, `${where}: listen[${i}]`))
  const announceRaw = raw.announce ?? []
  if (!Array.isArray(announceRaw)) throw new ConfigError(`${where}: announce must be a list of multiaddrs`)
  const announce = announceRaw.map((a, i) => validateListen(a, `${where}: announce[${i}]`))
  const peersRaw = raw.peers ?? []
  if (!Array.isArray(peersRaw)) throw new ConfigError(`${where}: peers must be a list`)
  const peers = peersRaw.map((p, i) => validatePeer(p, `${where}: peers[${i}]`))
  const names = new Set<string>()
  const ids = new Set<string>()
  for (const p of peers) {
    if (names.has(p.name)) throw new ConfigError(`${where}: peer name "${p.name}" appears twice`)
    if (ids.has(p.peerId)) throw new ConfigError(`${where}: peer ID ${p.peerId} appears twice (as "${p.name}")`)
    names.add(p.name)
    ids.add(p.peerId)
  }
  const datasets = raw.datasets ?? {}
  if (!isRecord(datasets)) throw new ConfigError(`${where}: datasets must be a mapping of name → {path, format}`)
  const relaysRaw = raw.relays ?? []
  if (!Array.isArray(relaysRaw)) throw new ConfigError(`${where}: relays must be a list of {name, addr}`)
  const relays = relaysRaw.map((r, i) => validateRelay(r, `${where}: relays[${i}]`))
  for (const r of relays) {
    if (ids.has(r.peerId)) throw new ConfigError(`${where}: relay ${r.name} has the peer ID of a peer (${r.peerId})`)
  }
  return { name, ...(raw.role ? { role: raw.role } : {}), listen, announce, peers, datasets, relays }
}

export function loadConfig(path: string): AgentConfig {
  if (!existsSync(path)) throw new ConfigError(`no config at ${path}: run \`mpc-agent init --name NAME\` first`)
  let raw: unknown
  try {
    raw = parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ConfigError(`${path}: not valid YAML: ${yamlErrorLine(e)}`)
  }
  return validateConfig(raw, path)
}

export function saveConfig(path: string, cfg: AgentConfig): void {
  const doc = {
    name: cfg.name,
    ...(cfg.role ? { role: cfg.role } : {}),
    listen: cfg.listen,
    ...(cfg.announce.length ? { announce: cfg.announce } : {}),
    peers: cfg.peers.map(({ name, addr, role }) => ({ name, addr, role })),
    ...(Object.keys(cfg.datasets).length ? { datasets: cfg.datasets } : {}),
    ...(cfg.relays?.length ? { relays: cfg.relays.map(({ name, addr }) => ({ name, addr })) } : {})
  }
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, stringify(doc), { mode: 0o600 })
  renameSync(tmp, path)
}

export function findPeer(cfg: AgentConfig, nameOrId: string): PeerEntry | undefined {
  return cfg.peers.find((p) => p.name === nameOrId || p.peerId === nameOrId)
}
