// The agent home: --home DIR, else $MPC_AGENT_HOME, else $XDG_CONFIG_HOME/mpc-agent (~/.config/mpc-agent).
// Holds the identity key (0600), config.yaml, policy.yaml, audit log, state store, control socket, logs.
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync, openSync, closeSync, renameSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { ConfigError } from './errors.ts'
import { signerFromSeed, type Signer } from '../crypto/sign.ts'

export interface HomePaths {
  dir: string
  key: string
  config: string
  policy: string
  audit: string
  auditHead: string
  /** nonces.json of earlier versions; migrated into `state` on first start. */
  nonces: string
  /** The durable store's journal (store.ts): nonces, differencing pins. */
  state: string
  control: string
  logs: string
}

export { resolveHome } from './home-dir.ts'

export function homePaths(dir: string): HomePaths {
  return {
    dir,
    key: join(dir, 'identity.key'),
    config: join(dir, 'config.yaml'),
    policy: join(dir, 'policy.yaml'),
    audit: join(dir, 'audit.jsonl'),
    auditHead: join(dir, 'audit.head'),
    nonces: join(dir, 'nonces.json'),
    state: join(dir, 'state.jsonl'),
    control: join(dir, 'control.sock'),
    logs: join(dir, 'logs')
  }
}

export interface Identity {
  privateKey: PrivateKey
  peerId: string
  signer: Signer
}

function identityOf(privateKey: PrivateKey): Identity {
  if (privateKey.type !== 'Ed25519') throw new ConfigError('identity key is not Ed25519: re-create it with `mpc-agent init --force`')
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  return { privateKey, peerId, signer: signerFromSeed(peerId, privateKey.raw.subarray(0, 32)) }
}

/** Create a fresh Ed25519 identity, written 0600 atomically. Refuses to overwrite unless `force`. */
export async function createIdentity(paths: HomePaths, force = false): Promise<Identity> {
  if (existsSync(paths.key) && !force) {
    throw new ConfigError(`an identity already exists at ${paths.key}; pass --force to replace it (peers will no longer recognise this agent)`)
  }
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  const tmp = `${paths.key}.${process.pid}.tmp`
  rmSync(tmp, { force: true })
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeFileSync(fd, privateKeyToProtobuf(key))
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, paths.key)
  return identityOf(key)
}

/** Load the identity; like ssh, refuse a key file readable or writable by group or others. */
export function loadIdentity(paths: HomePaths): Identity {
  let st
  try {
    st = statSync(paths.key)
  } catch {
    throw new ConfigError(`no identity in ${paths.dir}: run \`mpc-agent --home ${paths.dir} init --name NAME\` first`)
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(`key file ${paths.key} is accessible by others (mode ${(st.mode & 0o777).toString(8)}): run \`chmod 600 ${paths.key}\``)
  }
  try {
    return identityOf(privateKeyFromProtobuf(readFileSync(paths.key)))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`key file ${paths.key} is not a libp2p private key: restore it or re-create with \`mpc-agent init --force\``)
  }
}
