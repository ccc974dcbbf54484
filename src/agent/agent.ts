// An agent = home + identity + config, and (when running) a libp2p node admitting only configured peers.
import { writeFileSync, renameSync, readFileSync, rmSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { homePaths, loadIdentity, type HomePaths, type Identity } from './home.ts'
import { loadConfig, type AgentConfig } from './config.ts'
// libp2p is loaded by startNode only: commands that never start a node (query check, policy check,
// audit, budget, ...) do not pay for its ~550 modules
import type { AgentNode } from '../net/node.ts'
import type { ReachReport } from '../reach/report.ts'

export interface Agent {
  paths: HomePaths
  identity: Identity
  config: AgentConfig
}

export function openAgent(dir: string): Agent {
  const paths = homePaths(dir)
  const identity = loadIdentity(paths)
  const config = loadConfig(paths.config)
  return { paths, identity, config }
}

/**
 * Start this agent's libp2p node. `direct`: a node that only dials, at plain TCP addresses, for a
 * one-shot command that talks to `peers` only: when neither this agent nor any of them uses a relay,
 * the node is built without the relay client, identify and DCUtR (createAgentNode `direct`).
 */
export async function startNode(agent: Agent, listen?: string[], onRefused?: (peerId: string, reason: string) => void, o: { directTo?: string[] } = {}): Promise<AgentNode> {
  // loaded here, not above: the commands that only read a home (init, id, peers, audit, budget, pins) import this
  // module too, and libp2p is most of a CLI process's start-up (~0.4 s of CPU)
  const { createAgentNode } = await import('../net/node.ts')
  const node = await createAgentNode({
    privateKey: agent.identity.privateKey,
    listen: listen ?? agent.config.listen,
    // a node that only dials (listen = []) announces nothing
    announce: listen && listen.length === 0 ? [] : agent.config.announce,
    allow: new Set(agent.config.peers.map((p) => p.peerId)),
    relays: agent.config.relays ?? [],
    direct: o.directTo !== undefined && listen?.length === 0 && directOnly(agent, o.directTo),
    ...(onRefused ? { onRefused } : {})
  })
  await node.start()
  return node
}

/** No relay configured here, and each of `peers` is configured at an address of its own (no /p2p-circuit). */
export function directOnly(agent: Agent, peers: string[]): boolean {
  if (agent.config.relays?.length) return false
  return peers.every((p) => {
    const addr = agent.config.peers.find((x) => x.peerId === p)?.addr
    return addr !== undefined && !addr.includes('/p2p-circuit')
  })
}

/** Where a running `serve` publishes the addresses it actually bound (tcp/0 → real port). */
export function runtimeFile(paths: HomePaths): string {
  return join(paths.dir, 'serve.json')
}

export interface RuntimeInfo {
  pid: number
  peerId: string
  addrs: string[]
  /** The last reachability check through a relay (protocols/reach.md), when one ran. */
  reach?: ReachReport
}

export function writeRuntime(paths: HomePaths, info: RuntimeInfo, extra?: string): void {
  for (const file of [runtimeFile(paths), extra]) {
    if (!file) continue
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(info) + '\n')
    renameSync(tmp, file)
  }
}

export function readRuntime(paths: HomePaths): RuntimeInfo | null {
  try {
    const info = JSON.parse(readFileSync(runtimeFile(paths), 'utf8')) as RuntimeInfo
    process.kill(info.pid, 0) // throws if the process is gone
    return info
  } catch {
    return null
  }
}

export function clearRuntime(paths: HomePaths): void {
  rmSync(runtimeFile(paths), { force: true })
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}
