// relay init | allow | remove | list | id | serve: run a relay (its own home, identity and allowlist);
// relays add | list | remove: the relays an agent listens through (config.yaml `relays:`).
import { existsSync } from 'node:fs'
import { homePaths, createIdentity, loadIdentity } from '../../agent/home.ts'
import { readRuntime } from '../../agent/agent.ts'
import { loadConfig, saveConfig, validateListen, validateName, validateRelay } from '../../agent/config.ts'
import { ConfigError } from '../../agent/errors.ts'
import { DEFAULT_RELAY_LIMITS } from '../../relay/limits.ts'
import { DEFAULT_RELAY_LISTEN, loadRelayConfig, relayConfigPath, saveRelayConfig, validateMember } from '../../relay/config.ts'
import type { Output } from '../output.ts'

export async function relayInit(home: string, o: { name: string; listen?: string[]; announce?: string[]; force?: boolean }, out: Output): Promise<void> {
  const paths = homePaths(home)
  const name = validateName(o.name, '--name')
  const listen = (o.listen?.length ? o.listen : [DEFAULT_RELAY_LISTEN]).map((a) => validateListen(a, '--listen'))
  const announce = (o.announce ?? []).map((a) => validateListen(a, '--announce'))
  if (existsSync(relayConfigPath(home)) && !o.force) throw new ConfigError(`${relayConfigPath(home)} already exists; pass --force to re-initialise this relay`)
  if (existsSync(paths.config)) throw new ConfigError(`${paths.dir} is an agent's home (it has config.yaml): give the relay its own --home`)
  const running = readRuntime(paths)
  if (running) throw new ConfigError(`relay serve (pid ${running.pid}) is running on ${paths.dir}: stop it first`)
  const id = await createIdentity(paths, o.force)
  saveRelayConfig(home, { name, listen, announce, allow: [], limits: { ...DEFAULT_RELAY_LIMITS } })
  out.log(`created ${paths.key} (mode 0600) and ${relayConfigPath(home)}; allow members with \`mpc-agent --home ${paths.dir} relay allow NAME PEER_ID\``)
  if (out.opts.json) out.data({ peerId: id.peerId, home: paths.dir })
  else out.result(id.peerId)
}

/** The relay's dialable addresses (announced, else bound by a running serve, else configured). */
function relayAddrs(home: string): { name: string; peerId: string; addrs: string[] } {
  const paths = homePaths(home)
  const id = loadIdentity(paths)
  const cfg = loadRelayConfig(home)
  const withId = (a: string): string => (a.includes('/p2p/') ? a : `${a}/p2p/${id.peerId}`)
  const running = readRuntime(paths)
  return { name: cfg.name, peerId: id.peerId, addrs: cfg.announce.length ? cfg.announce.map(withId) : (running?.addrs ?? cfg.listen.map(withId)) }
}

export function relayId(home: string, out: Output): void {
  const info = relayAddrs(home)
  if (out.opts.json) out.data(info)
  else out.result([`name    ${info.name}`, `peer    ${info.peerId}`, ...info.addrs.map((a) => `addr    ${a}`)].join('\n'))
}

export function relayAllow(home: string, name: string, peerId: string, out: Output): void {
  const cfg = loadRelayConfig(home)
  const m = validateMember({ name, peerId }, 'relay allow')
  const clash = cfg.allow.find((x) => (x.name === m.name) !== (x.peerId === m.peerId))
  if (clash) throw new ConfigError(`relay allow: ${clash.name === m.name ? `name "${m.name}" is already ${clash.peerId}` : `peer ID ${m.peerId} is already allowed as "${clash.name}"`}: \`relay remove\` it first`)
  if (!cfg.allow.some((x) => x.peerId === m.peerId)) cfg.allow.push(m)
  saveRelayConfig(home, cfg)
  out.log(`allowed ${m.name} (${m.peerId}) to reserve and connect through ${cfg.name}${readRuntime(homePaths(home)) ? '; send SIGHUP to the running relay to apply' : ''}`)
}

export function relayRemove(home: string, name: string, out: Output): void {
  const cfg = loadRelayConfig(home)
  const before = cfg.allow.length
  cfg.allow = cfg.allow.filter((m) => m.name !== name && m.peerId !== name)
  if (cfg.allow.length === before) throw new ConfigError(`no member "${name}" in ${relayConfigPath(home)}: see \`mpc-agent relay list\``)
  saveRelayConfig(home, cfg)
  out.log(`removed ${name}${readRuntime(homePaths(home)) ? '; send SIGHUP to the running relay to apply' : ''}`)
}

export function relayList(home: string, out: Output): void {
  const cfg = loadRelayConfig(home)
  if (out.opts.json) out.data({ name: cfg.name, allow: cfg.allow, limits: cfg.limits })
  else out.result([...cfg.allow.map((m) => `${m.name.padEnd(16)} ${m.peerId}`), `limits  ${cfg.limits.data_mib} MiB and ${cfg.limits.duration_s} s per relayed connection (both directions), ${cfg.limits.reservations} reservations`].join('\n'))
}

export async function relayServe(home: string, o: { readyFile?: string }, out: Output, signal: AbortSignal): Promise<void> {
  const { serveRelay } = await import('../../relay/serve.ts')
  await serveRelay(home, { readyFile: o.readyFile, log: (l) => process.stderr.write(l + '\n'), ready: (info) => out.data({ v: 1, type: 'ready', ...info }) }, signal)
}

// --- an agent's relays (config.yaml `relays:`) ------------------------------------------------

export function relaysAdd(home: string, name: string, addr: string, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const r = validateRelay({ name, addr }, 'relays add')
  if (cfg.peers.some((p) => p.name === r.name)) throw new ConfigError(`relays add: "${r.name}" is already a peer's name`)
  cfg.relays = [...(cfg.relays ?? []).filter((x) => x.name !== r.name && x.peerId !== r.peerId), r]
  saveConfig(paths.config, cfg)
  out.log(`added relay ${r.name} (${r.peerId}); \`serve\` listens through it from its next start${readRuntime(paths) ? ' (restart the running serve)' : ''}`)
}

export function relaysRemove(home: string, name: string, out: Output): void {
  const paths = homePaths(home)
  const cfg = loadConfig(paths.config)
  const before = (cfg.relays ?? []).length
  cfg.relays = (cfg.relays ?? []).filter((r) => r.name !== name)
  if (cfg.relays.length === before) throw new ConfigError(`no relay named "${name}": see \`mpc-agent relays list\``)
  saveConfig(paths.config, cfg)
  out.log(`removed relay ${name}`)
}

export function relaysList(home: string, out: Output): void {
  const cfg = loadConfig(homePaths(home).config)
  if (out.opts.json) out.data(cfg.relays ?? [])
  else out.result(cfg.relays?.length ? cfg.relays.map((r) => `${r.name.padEnd(16)} ${r.addr}`).join('\n') : '(no relays: this agent is reached directly)')
}
