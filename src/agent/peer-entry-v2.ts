// Version 2 of the signed peer entry (protocols/directory.md §2): the v1 entry (peer-entry.ts) plus a
// sequence number, an expiry and, optionally, the datasets offered and a summary of the policy.
// What `mpc-agent id --entry` prints, what `peers import` takes and what a directory serves. Pure
// apart from the clock passed in: the same checks run at the directory, at `peers discover` and at
// `peers import`.
//
// The signature (Ed25519 by the key the peer ID names, over a digest labelled with the version)
// proves that the holder of that key made exactly this entry. Everything in it is a CLAIM by that
// peer: the name is not proven to be the firm's (confirm the peer ID out of band), the role grants
// nothing (the importing operator's allowlist decides which role a peer gets), and the datasets and
// policy summary do not bind the peer's policy.yaml, which alone decides at run time.
import { multiaddr } from '@multiformats/multiaddr'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import { fromHex, toHex } from '../crypto/bytes.ts'
import { ConfigError } from './errors.ts'
import { validateName, type Role } from './config.ts'
import { unfitForOthers } from './peer-entry.ts'

/** Domain separation: a v2 entry signature is never valid as a v1 entry or any protocol message. */
export const PEER_ENTRY_LABEL_V2 = 'mpc-agent/peer-entry/v2'

/** Bounds of a v2 entry (directory.md §2.2), each the most an honest entry needs, with margin. */
export const ENTRY_LIMITS = Object.freeze({
  /** Addresses: a few direct ones plus one relayed address per relay. */
  addrs: 8,
  /** Characters of one multiaddr (a relayed one holds two peer IDs and a DNS name). */
  addrChars: 512,
  /** Dataset names offered. */
  datasets: 32,
  /** Longest validity: an entry is re-signed at least this often, so expiry means something. */
  maxTtlS: 90 * 86_400,
  /** Clock skew allowed between signer and checker, both ways. */
  skewS: 300,
  /** The whole entry as JSON, in bytes: 8 addresses of 512 + 32 names of 64 fit with room. */
  bytes: 8_192
})

/** A summary of the provider's policy (directory.md §2.1): a claim to help a buyer choose, never binding. */
export interface PolicySummary {
  approval: 'auto' | 'manual'
  min_providers: number
  max_cells: number
  /** Whether the policy requires differential privacy on results. */
  dp_required: boolean
}

export interface SignedPeerEntryV2 {
  v: 2
  name: string
  peerId: string
  /** Dialable multiaddrs, each ending in /p2p/<peerId>; none unfit for others (tcp/0, 0.0.0.0). */
  addrs: string[]
  /** A claim: the importer's allowlist decides the role this peer gets. */
  role: Role
  /** Positive integer, strictly increasing per peer ID: a newer entry replaces an older one. */
  seq: number
  /** Unix time in seconds after which the entry is no longer accepted (± ENTRY_LIMITS.skewS). */
  exp: number
  datasets?: string[]
  policy?: PolicySummary
  /** Hex Ed25519 signature over H(PEER_ENTRY_LABEL_V2, JCS(the entry without sig)). */
  sig: string
}

export type EntryCheck = 'shape' | 'size' | 'peer' | 'addrs' | 'expired' | 'ttl' | 'signature'

/** A v2 entry failed a check; `check` names which (directory.md §2.3), the message says how to fix it. */
export class EntryCheckError extends ConfigError {
  override name = 'EntryCheckError'
  readonly check: EntryCheck
  constructor(check: EntryCheck, message: string) {
    super(message)
    this.check = check
  }
}

type Body = Omit<SignedPeerEntryV2, 'sig'>

/** The signed statement: exactly these keys, optional ones only when present. */
function body(e: Body): Body {
  return {
    v: 2,
    name: e.name,
    peerId: e.peerId,
    addrs: e.addrs,
    role: e.role,
    seq: e.seq,
    exp: e.exp,
    ...(e.datasets ? { datasets: e.datasets } : {}),
    ...(e.policy ? { policy: { approval: e.policy.approval, min_providers: e.policy.min_providers, max_cells: e.policy.max_cells, dp_required: e.policy.dp_required } } : {})
  }
}

export function signPeerEntryV2(signer: Signer, e: Omit<Body, 'v' | 'peerId'>): SignedPeerEntryV2 {
  const b = body({ ...e, v: 2, peerId: signer.peerId })
  return { ...b, sig: toHex(signer.sign(statementDigest(PEER_ENTRY_LABEL_V2, b))) }
}

/** The peer ID an address leads to: its LAST /p2p/ (a relayed address names the relay first). */
export function targetPeerOf(addr: string): string | undefined {
  return multiaddr(addr).getComponents().filter((c) => c.name === 'p2p').at(-1)?.value
}

export function isRelayed(addr: string): boolean {
  return multiaddr(addr).getComponents().some((c) => c.name === 'p2p-circuit')
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const KEYS = ['v', 'name', 'peerId', 'addrs', 'role', 'seq', 'exp', 'datasets', 'policy', 'sig']
const POLICY_KEYS = ['approval', 'min_providers', 'max_cells', 'dp_required']

function posInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0
}

/**
 * Check a v2 entry completely (directory.md §2.3) and return it typed. `nowMs` is the checker's
 * clock. Throws EntryCheckError naming the first failed check; never accepts a partial entry.
 */
export function verifyPeerEntryV2(raw: unknown, where: string, nowMs: number): SignedPeerEntryV2 {
  const bad = (check: EntryCheck, msg: string): EntryCheckError => new EntryCheckError(check, `${where}: ${msg}`)
  if (!isRecord(raw)) throw bad('shape', 'expected a signed entry object')
  // size first: nothing below walks an unbounded value (the wire parser bounded it already; a file did not)
  let size: number
  try {
    size = Buffer.byteLength(JSON.stringify(raw))
  } catch {
    throw bad('shape', 'not a JSON value')
  }
  if (size > ENTRY_LIMITS.bytes) throw bad('size', `the entry is ${size} bytes, more than ${ENTRY_LIMITS.bytes}`)
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) throw bad('shape', `unknown key "${k}" in a v2 entry (allowed: ${KEYS.join(', ')})`)
  if (raw.v !== 2) throw bad('shape', `expected version 2, got ${JSON.stringify(raw.v)}`)
  // the name rule of config.yaml, reported as this entry's shape check
  const named = (v: unknown, at: string): string => {
    try {
      return validateName(v, at)
    } catch (e) {
      throw new EntryCheckError('shape', (e as Error).message)
    }
  }
  const name = named(raw.name, `${where}.name`)
  if (typeof raw.peerId !== 'string') throw bad('peer', 'peerId: expected a peer ID string')
  const peerId = raw.peerId
  let pub: Uint8Array
  try {
    pub = parsePeer(peerId).publicKey
  } catch (e) {
    throw bad('peer', `peerId: ${(e as Error).message}`)
  }
  if (raw.role !== 'provider' && raw.role !== 'buyer') throw bad('shape', `role must be "provider" or "buyer", got ${JSON.stringify(raw.role)}`)
  const role: Role = raw.role
  if (!posInt(raw.seq)) throw bad('shape', `seq must be a positive integer, got ${JSON.stringify(raw.seq)}`)
  if (!posInt(raw.exp)) throw bad('shape', `exp must be a Unix time in seconds, got ${JSON.stringify(raw.exp)}`)
  if (!Array.isArray(raw.addrs) || raw.addrs.length === 0) throw bad('addrs', 'addrs: expected a non-empty list of multiaddrs')
  if (raw.addrs.length > ENTRY_LIMITS.addrs) throw bad('size', `${raw.addrs.length} addresses, more than ${ENTRY_LIMITS.addrs}`)
  const addrs: string[] = []
  for (const [i, a] of raw.addrs.entries()) {
    if (typeof a !== 'string') throw bad('addrs', `addrs[${i}]: expected a multiaddr string`)
    if (a.length > ENTRY_LIMITS.addrChars) throw bad('size', `addrs[${i}] is longer than ${ENTRY_LIMITS.addrChars} characters`)
    const why = unfitForOthers(a)
    if (why === 'not a multiaddr') throw bad('addrs', `addrs[${i}]: "${a}" is not a multiaddr`)
    if (why) throw bad('addrs', `addrs[${i}] ${a}: ${why}`)
    if (targetPeerOf(a) !== peerId) throw bad('addrs', `addrs[${i}]: "${a}" does not end in /p2p/${peerId}`)
    addrs.push(a)
  }
  let datasets: string[] | undefined
  if (raw.datasets !== undefined) {
    if (!Array.isArray(raw.datasets)) throw bad('shape', 'datasets: expected a list of names')
    if (raw.datasets.length > ENTRY_LIMITS.datasets) throw bad('size', `${raw.datasets.length} datasets, more than ${ENTRY_LIMITS.datasets}`)
    datasets = raw.datasets.map((d, i) => named(d, `${where}.datasets[${i}]`))
    if (new Set(datasets).size !== datasets.length) throw bad('shape', 'datasets: a name appears twice')
  }
  let policy: PolicySummary | undefined
  if (raw.policy !== undefined) {
    const p = raw.policy
    if (!isRecord(p)) throw bad('shape', 'policy: expected {approval, min_providers, max_cells, dp_required}')
    for (const k of Object.keys(p)) if (!POLICY_KEYS.includes(k)) throw bad('shape', `policy: unknown key "${k}"`)
    if (p.approval !== 'auto' && p.approval !== 'manual') throw bad('shape', 'policy.approval must be "auto" or "manual"')
    if (!posInt(p.min_providers) || !posInt(p.max_cells)) throw bad('shape', 'policy.min_providers and policy.max_cells must be positive integers')
    if (typeof p.dp_required !== 'boolean') throw bad('shape', 'policy.dp_required must be true or false')
    policy = { approval: p.approval, min_providers: p.min_providers, max_cells: p.max_cells, dp_required: p.dp_required }
  }
  if (typeof raw.sig !== 'string') throw bad('signature', `the entry of ${name} is not signed (no "sig"): ask ${name} for a fresh \`mpc-agent id --entry\``)
  let sig: Uint8Array
  try {
    sig = fromHex(raw.sig, 64)
  } catch {
    throw bad('signature', 'sig: expected 128 hex digits')
  }
  const b = body({ v: 2, name, peerId, addrs, role, seq: raw.seq, exp: raw.exp, ...(datasets ? { datasets } : {}), ...(policy ? { policy } : {}) })
  if (!verifySignature(pub, statementDigest(PEER_ENTRY_LABEL_V2, b), sig)) {
    throw bad('signature', `the signature of ${name}'s entry does not verify with the key of ${peerId}: it was altered or not made by that peer; ask ${name} for a fresh \`mpc-agent id --entry\``)
  }
  // time last: a correctly signed entry can only be too old or too long-lived, and the message says which
  const nowS = Math.floor(nowMs / 1000)
  if (raw.exp + ENTRY_LIMITS.skewS < nowS) throw bad('expired', `${name}'s entry expired at ${new Date(raw.exp * 1000).toISOString()}: ask ${name} for a fresh \`mpc-agent id --entry\``)
  if (raw.exp > nowS + ENTRY_LIMITS.maxTtlS + ENTRY_LIMITS.skewS) throw bad('ttl', `${name}'s entry is valid until ${new Date(raw.exp * 1000).toISOString()}, more than ${ENTRY_LIMITS.maxTtlS / 86_400} days ahead`)
  return { ...b, sig: raw.sig }
}

/** A validity such as "90m", "12h", "7d" or "3600s", in seconds, within (0, maxTtlS]. */
export function parseTtl(s: string, flag = '--ttl'): number {
  const m = /^([1-9][0-9]{0,7})([smhd])$/.exec(s)
  if (!m) throw new ConfigError(`${flag}: expected a duration such as 12h or 7d, got ${JSON.stringify(s)}`)
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd']
  if (n > ENTRY_LIMITS.maxTtlS) throw new ConfigError(`${flag}: at most ${ENTRY_LIMITS.maxTtlS / 86_400}d (an entry must be re-signed that often)`)
  return n
}
