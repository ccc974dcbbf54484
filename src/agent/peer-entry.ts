// A peer's signed entry: what one firm sends the others so they can add it to their allowlist.
// One format, printed by `mpc-agent id --entry` and read by `mpc-agent peers import`; a directory of
// peers can later serve the same objects unchanged. The signature (Ed25519, by the key the peer ID
// names) proves the entry was made by the holder of that key: nobody can forge an entry binding
// another firm's peer ID to their own addresses or role. It does NOT prove that the name belongs to
// that firm: confirm the peer ID out of band (phone, signed e-mail) as with an ssh host key.
import { multiaddr } from '@multiformats/multiaddr'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import { parsePeer } from '../crypto/peer.ts'
import { fromHex, toHex } from '../crypto/bytes.ts'
import { ConfigError } from './errors.ts'
import { validateListen, validateName, type PeerEntry, type Role } from './config.ts'
import { verifyPeerEntryV2 } from './peer-entry-v2.ts'

/** Domain separation of the entry signature (never valid as any protocol message's signature). */
export const PEER_ENTRY_LABEL = 'mpc-agent/peer-entry/v1'

export interface SignedPeerEntry {
  v: 1
  name: string
  peerId: string
  /** Dialable multiaddrs, each ending in /p2p/<peerId>. */
  addrs: string[]
  role: Role
  /** Hex Ed25519 signature over H(PEER_ENTRY_LABEL, JCS({v, name, peerId, addrs, role})). */
  sig: string
}

function body(e: Omit<SignedPeerEntry, 'sig'>): Omit<SignedPeerEntry, 'sig'> {
  return { v: 1, name: e.name, peerId: e.peerId, addrs: e.addrs, role: e.role }
}

export function signPeerEntry(signer: Signer, e: { name: string; addrs: string[]; role: Role }): SignedPeerEntry {
  const b = body({ v: 1, name: e.name, peerId: signer.peerId, addrs: e.addrs, role: e.role })
  return { ...b, sig: toHex(signer.sign(statementDigest(PEER_ENTRY_LABEL, b))) }
}

/**
 * Why an address is no use to someone else: /tcp/0 (a random port, chosen at each start) or an
 * unspecified host (0.0.0.0, ::), which means "every interface here" and dials nothing elsewhere.
 * null when the address is fine to hand out.
 */
export function unfitForOthers(addr: string): string | null {
  let comps
  try {
    comps = multiaddr(addr).getComponents()
  } catch {
    return 'not a multiaddr'
  }
  if (comps.some((c) => c.name === 'tcp' && c.value === '0')) return 'port 0 means a random port: others cannot dial it (use a fixed port, default 41001)'
  if (comps.some((c) => (c.name === 'ip4' && c.value === '0.0.0.0') || (c.name === 'ip6' && c.value === '::'))) {
    return 'an unspecified address (0.0.0.0 / ::) means "every interface here": give others an address they can dial (--announce)'
  }
  return null
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The key names of the accepted shapes, to tell a user which one a bad item resembles. */
const SHAPES = 'a signed entry {v, name, peerId, addrs, role, [seq, exp,] sig} (from `mpc-agent id --entry`), or {name, addr, role[, peerId]} (from `mpc-agent peers list --json`)'

export interface ImportedPeer extends PeerEntry {
  /** Whether the entry carried a valid signature by the peer's own key. */
  signed: boolean
}

/**
 * One item of an import file, in any accepted shape, validated: a signed entry (its signature is
 * checked; a bad one is refused), or a plain {name, addr, role} with an optional peerId that must
 * match the address. The first address fit for others is kept as the dial address.
 */
export function parseImportItem(raw: unknown, where: string): ImportedPeer {
  if (!isRecord(raw)) throw new ConfigError(`${where}: expected ${SHAPES}`)
  if ('sig' in raw || 'addrs' in raw) {
    if (raw.v === 2) {
      // v2 (peer-entry-v2.ts): every check, expiry included, against this machine's clock
      const e = verifyPeerEntryV2(raw, where, Date.now())
      // the signer lists its addresses in order of preference (relayed first when it is behind NAT);
      // config.yaml keeps one dial address per peer
      const addr = e.addrs[0] as string
      return { name: e.name, addr, peerId: e.peerId, role: e.role, signed: true }
    }
    // v1 (no seq, no expiry) stays importable: entries already handed out by e-mail keep working
    for (const k of Object.keys(raw)) {
      if (!['v', 'name', 'peerId', 'addrs', 'role', 'sig'].includes(k)) throw new ConfigError(`${where}: unknown key "${k}" in a signed entry (allowed: v, name, peerId, addrs, role, sig)`)
    }
    if (raw.v !== 1) throw new ConfigError(`${where}: signed entry version must be 1 or 2, got ${JSON.stringify(raw.v)}`)
    const name = validateName(raw.name, `${where}.name`)
    if (typeof raw.peerId !== 'string') throw new ConfigError(`${where}.peerId: expected a peer ID string`)
    let pub: Uint8Array
    try {
      pub = parsePeer(raw.peerId).publicKey
    } catch (e) {
      throw new ConfigError(`${where}.peerId: ${(e as Error).message}`)
    }
    if (raw.role !== 'provider' && raw.role !== 'buyer') throw new ConfigError(`${where}.role: must be "provider" or "buyer", got ${JSON.stringify(raw.role)}`)
    if (!Array.isArray(raw.addrs) || raw.addrs.length === 0) throw new ConfigError(`${where}.addrs: expected a non-empty list of multiaddrs`)
    const addrs = raw.addrs.map((a, i) => validateListen(a, `${where}.addrs[${i}]`))
    for (const a of addrs) {
      const p2p = multiaddr(a).getComponents().findLast((c) => c.name === 'p2p')?.value
      if (p2p !== raw.peerId) throw new ConfigError(`${where}.addrs: "${a}" does not end in /p2p/${raw.peerId}`)
    }
    if (typeof raw.sig !== 'string') throw new ConfigError(`${where}: the entry of ${name} is not signed (no "sig"): ask ${name} for the output of \`mpc-agent id --entry\``)
    let sig: Uint8Array
    try {
      sig = fromHex(raw.sig, 64)
    } catch {
      throw new ConfigError(`${where}.sig: expected 128 hex digits`)
    }
    const b = body({ v: 1, name, peerId: raw.peerId, addrs, role: raw.role })
    if (!verifySignature(pub, statementDigest(PEER_ENTRY_LABEL, b), sig)) {
      throw new ConfigError(`${where}: the signature of ${name}'s entry does not verify with the key of ${raw.peerId}: it was altered or not made by that peer; ask ${name} for a fresh \`mpc-agent id --entry\``)
    }
    const addr = addrs.find((a) => unfitForOthers(a) == null)
    if (!addr) throw new ConfigError(`${where}: none of ${name}'s addresses can be dialled from here (${unfitForOthers(addrs[0] as string)}); ${name} must re-export with --announce`)
    return { name, addr, peerId: raw.peerId, role: raw.role, signed: true }
  }
  for (const k of Object.keys(raw)) {
    if (!['name', 'addr', 'role', 'peerId'].includes(k)) throw new ConfigError(`${where}: unknown key "${k}": expected ${SHAPES}`)
  }
  const name = validateName(raw.name, `${where}.name`)
  const addr = validateListen(raw.addr, `${where}.addr`)
  const p2p = multiaddr(addr).getComponents().findLast((c) => c.name === 'p2p')?.value // relayed: the last /p2p/ is the peer
  if (!p2p) throw new ConfigError(`${where}.addr: "${addr}" has no /p2p/<peer-id>: append the peer's ID as printed by \`mpc-agent id\``)
  try {
    parsePeer(p2p)
  } catch (e) {
    throw new ConfigError(`${where}.addr: ${(e as Error).message}`)
  }
  if (raw.peerId !== undefined && raw.peerId !== p2p) throw new ConfigError(`${where}: peerId ${String(raw.peerId)} does not match the address's /p2p/${p2p}`)
  if (raw.role !== 'provider' && raw.role !== 'buyer') throw new ConfigError(`${where}.role: must be "provider" or "buyer", got ${JSON.stringify(raw.role)}`)
  return { name, addr, peerId: p2p, role: raw.role, signed: false }
}

/** The items of an import document: one entry, a list, or {peers: [...]}. */
export function importItems(raw: unknown, file: string): unknown[] {
  if (Array.isArray(raw)) return raw
  if (isRecord(raw) && Array.isArray(raw.peers)) return raw.peers
  if (isRecord(raw) && ('sig' in raw || 'addr' in raw || 'addrs' in raw)) return [raw]
  throw new ConfigError(`${file}: expected ${SHAPES}, or a list of them`)
}
