// relay.yaml of a relay home (`mpc-agent relay init`): the relay's name, listen/announce addresses,
// the allowlist of peer IDs that may reserve a slot or be connected through it, and the limits of
// each relayed connection. Validated strictly, like config.yaml (unknown keys are errors).
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { ConfigError } from '../agent/errors.ts'
import { validateListen, validateName } from '../agent/config.ts'
import { parsePeer } from '../crypto/peer.ts'
import { yamlErrorLine } from '../util/yaml-error.ts'
import { DEFAULT_RELAY_LIMITS, MAX_RESERVATIONS_CAP, type RelayLimits } from './limits.ts'

export interface RelayMember {
  name: string
  peerId: string
}

export interface RelayConfig {
  name: string
  listen: string[]
  announce: string[]
  /** Only these peers may reserve a slot, and a relayed connection needs both ends in this list. */
  allow: RelayMember[]
  limits: RelayLimits
}

export const DEFAULT_RELAY_PORT = 41002
export const DEFAULT_RELAY_LISTEN = `/ip4/127.0.0.1/tcp/${DEFAULT_RELAY_PORT}`

export function relayConfigPath(home: string): string {
  return join(home, 'relay.yaml')
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function onlyKeys(where: string, v: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ConfigError(`${where}: unknown key "${k}" (allowed: ${allowed.join(', ')})`)
  }
}

function positiveInt(v: unknown, where: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > max) throw new ConfigError(`${where}: expected a whole number from 1 to ${max}, got ${JSON.stringify(v)}`)
  return v
}

export function validateMember(raw: unknown, where: string): RelayMember {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected {name, peerId}`)
  onlyKeys(where, raw, ['name', 'peerId'])
  const name = validateName(raw.name, `${where}.name`)
  if (typeof raw.peerId !== 'string') throw new ConfigError(`${where}.peerId: expected a peer ID (as printed by \`mpc-agent id\`)`)
  try {
    parsePeer(raw.peerId)
  } catch (e) {
    throw new ConfigError(`${where}.peerId: ${(e as Error).message}`)
  }
  return { name, peerId: raw.peerId }
}

function validateLimits(raw: unknown, where: string): RelayLimits {
  if (raw === undefined) return { ...DEFAULT_RELAY_LIMITS }
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected a mapping of duration_s, data_mib, reservations, reservation_ttl_s`)
  onlyKeys(where, raw, ['duration_s', 'data_mib', 'reservations', 'reservation_ttl_s'])
  return {
    duration_s: raw.duration_s === undefined ? DEFAULT_RELAY_LIMITS.duration_s : positiveInt(raw.duration_s, `${where}.duration_s`, 7 * 24 * 3600),
    data_mib: raw.data_mib === undefined ? DEFAULT_RELAY_LIMITS.data_mib : positiveInt(raw.data_mib, `${where}.data_mib`, 1024 * 1024),
    reservations: raw.reservations === undefined ? DEFAULT_RELAY_LIMITS.reservations : positiveInt(raw.reservations, `${where}.reservations`, MAX_RESERVATIONS_CAP),
    reservation_ttl_s: raw.reservation_ttl_s === undefined ? DEFAULT_RELAY_LIMITS.reservation_ttl_s : positiveInt(raw.reservation_ttl_s, `${where}.reservation_ttl_s`, 7 * 24 * 3600)
  }
}

export function validateRelayConfig(raw: unknown, where = 'relay.yaml'): RelayConfig {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected a mapping with name, listen, allow, limits`)
  onlyKeys(where, raw, ['name', 'listen', 'announce', 'allow', 'limits'])
  const name = validateName(raw.name, `${where}: name`)
  const listenRaw = raw.listen ?? [DEFAULT_RELAY_LISTEN]
  if (!Array.isArray(listenRaw) || listenRaw.length === 0) throw new ConfigError(`${where}: listen must be a non-empty list of multiaddrs`)
  const listen = listenRaw.map((a, i) => validateListen(a, `${where}: listen[${i}]`))
  const announceRaw = raw.announce ?? []
  if (!Array.isArray(announceRaw)) throw new ConfigError(`${where}: announce must be a list of multiaddrs`)
  const announce = announceRaw.map((a, i) => validateListen(a, `${where}: announce[${i}]`))
  const allowRaw = raw.allow ?? []
  if (!Array.isArray(allowRaw)) throw new ConfigError(`${where}: allow must be a list of {name, peerId}`)
  const allow = allowRaw.map((m, i) => validateMember(m, `${where}: allow[${i}]`))
  const names = new Set<string>()
  const ids = new Set<string>()
  for (const m of allow) {
    if (names.has(m.name)) throw new ConfigError(`${where}: allow: name "${m.name}" appears twice`)
    if (ids.has(m.peerId)) throw new ConfigError(`${where}: allow: peer ID ${m.peerId} appears twice (as "${m.name}")`)
    names.add(m.name)
    ids.add(m.peerId)
  }
  return { name, listen, announce, allow, limits: validateLimits(raw.limits, `${where}: limits`) }
}

export function loadRelayConfig(home: string): RelayConfig {
  const path = relayConfigPath(home)
  if (!existsSync(path)) throw new ConfigError(`no relay config at ${path}: run \`mpc-agent --home ${home} relay init --name NAME\` first`)
  let raw: unknown
  try {
    raw = parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ConfigError(`${path}: not valid YAML: ${yamlErrorLine(e)}`)
  }
  return validateRelayConfig(raw, path)
}

export function saveRelayConfig(home: string, cfg: RelayConfig): void {
  const path = relayConfigPath(home)
  const doc = {
    name: cfg.name,
    listen: cfg.listen,
    ...(cfg.announce.length ? { announce: cfg.announce } : {}),
    allow: cfg.allow.map(({ name, peerId }) => ({ name, peerId })),
    limits: cfg.limits
  }
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, stringify(doc), { mode: 0o600 })
  renameSync(tmp, path)
}
