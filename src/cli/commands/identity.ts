// init, id: create and show an agent's identity.
import { existsSync } from 'node:fs'
import { homePaths, createIdentity, loadIdentity } from '../../agent/home.ts'
import { saveConfig, validateListen, validateName, loadConfig } from '../../agent/config.ts'
import { readRuntime } from '../../agent/agent.ts'
import { ConfigError } from '../../agent/errors.ts'
import type { Output } from '../output.ts'

export async function initCommand(home: string, o: { name: string; listen?: string[]; force?: boolean }, out: Output): Promise<void> {
  const paths = homePaths(home)
  const name = validateName(o.name, '--name')
  const listen = (o.listen?.length ? o.listen : ['/ip4/127.0.0.1/tcp/0']).map((a) => validateListen(a, '--listen'))
  if (existsSync(paths.config) && !o.force) {
    throw new ConfigError(`${paths.config} already exists; pass --force to re-initialise this home`)
  }
  const id = await createIdentity(paths, o.force)
  saveConfig(paths.config, { name, listen, peers: [], datasets: {} })
  out.log(`created ${paths.key} (mode 0600) and ${paths.config}`)
  if (out.opts.json) out.data({ peerId: id.peerId, home: paths.dir })
  else out.result(id.peerId)
}

export function idCommand(home: string, out: Output): void {
  const paths = homePaths(home)
  const id = loadIdentity(paths)
  const cfg = loadConfig(paths.config)
  const running = readRuntime(paths)
  const addrs = (running?.addrs ?? cfg.listen.map((a) => `${a}/p2p/${id.peerId}`))
  if (out.opts.json) out.data({ name: cfg.name, peerId: id.peerId, addrs, serving: running != null })
  else out.result([`name    ${cfg.name}`, `peer    ${id.peerId}`, ...addrs.map((a) => `addr    ${a}`)].join('\n'))
}
