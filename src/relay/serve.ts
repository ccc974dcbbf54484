// `mpc-agent relay serve`: run the relay until SIGINT/SIGTERM; SIGHUP re-reads relay.yaml's
// allowlist (a member removed loses its reservation and connections at once). Logs carry peer IDs,
// names and refusals only: the relay never holds a plaintext byte of a run to log.
import { homePaths, loadIdentity } from '../agent/home.ts'
import { JsonLog } from '../agent/log.ts'
import { writeRuntime, clearRuntime, readRuntime } from '../agent/agent.ts'
import { ConfigError } from '../agent/errors.ts'
import { loadRelayConfig, type RelayConfig } from './config.ts'
import { createRelayNode, type RelayNode } from './node.ts'
import { join } from 'node:path'
import { mountDirectory } from '../directory/server.ts'
import { mountReach } from '../reach/server.ts'

export interface RelayServeOptions {
  readyFile?: string
  log: (line: string) => void
  ready?: (info: { peerId: string; addrs: string[] }) => void
}

export async function serveRelay(home: string, o: RelayServeOptions, signal: AbortSignal): Promise<void> {
  const paths = homePaths(home)
  const identity = loadIdentity(paths)
  let config: RelayConfig = loadRelayConfig(home)
  const other = readRuntime(paths)
  if (other && other.pid !== process.pid) throw new ConfigError(`a serve (pid ${other.pid}) already runs on ${paths.dir}: stop it first (\`kill ${other.pid}\`)`)
  const log = new JsonLog(paths.logs)
  const say = (line: string, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void => {
    o.log(`mpc-agent relay: ${line}`)
    try {
      log.write(level, line, fields)
    } catch {
      // the log is gone: keep relaying
    }
  }
  const nameOf = (id: string): string => config.allow.find((m) => m.peerId === id)?.name ?? id
  const allow = new Set(config.allow.map((m) => m.peerId))
  let node: RelayNode
  try {
    node = await createRelayNode({
      privateKey: identity.privateKey, listen: config.listen, announce: config.announce, allow, limits: config.limits,
      onRefused: (what, peers) => say(`refused ${what} ${peers.map(nameOf).join(' → ')}: not in relay.yaml allow`, { refused: what, peers }, 'warn')
    })
    await node.start()
  } catch (err) {
    const text = `${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`
    if (/EADDRINUSE|address already in use|failed to be listened on/i.test(text)) {
      throw new ConfigError(`a listen address of the relay (${config.listen.join(', ')}) cannot be bound (in use? \`ss -ltnp\`); change \`listen:\` in ${paths.dir}/relay.yaml`)
    }
    throw err
  }
  node.services.relay.addEventListener('relay:reservation', (e) => {
    // the reservation event carries the member's address, not its ID: name it by its connection
    const conn = node.getConnections().find((c) => c.remoteAddr.equals(e.detail.addr))
    const id = conn?.remotePeer.toString()
    say(`reservation ${id ? `by ${nameOf(id)}` : `from ${e.detail.addr.toString()}`} until ${e.detail.expiry.toISOString()}`, { reservation: id ?? null })
  })

  // the directory of peers (protocols/directory.md): members publish their own signed entries and list
  // the others'; the allowlist above decides who can reach it at all. State survives a restart.
  const directory = await mountDirectory(node, { statePath: join(paths.dir, 'directory.jsonl'), log: (line) => say(line) })
  // members ask whether they are reachable directly (protocols/reach.md): dialled back at their own address only
  const reach = await mountReach(node, { log: (line) => say(line) })

  const reload = async (): Promise<void> => {
    let fresh: RelayConfig
    try {
      fresh = loadRelayConfig(home)
    } catch (e) {
      say(`reload refused, keeping the running allowlist: ${(e as Error).message}`, {}, 'warn')
      return
    }
    config = { ...config, allow: fresh.allow }
    allow.clear()
    for (const m of fresh.allow) allow.add(m.peerId)
    const closed: string[] = []
    for (const c of node.getConnections()) {
      const id = c.remotePeer.toString()
      if (!allow.has(id)) {
        closed.push(id)
        await c.close().catch(() => c.abort(new Error('removed from the relay allowlist')))
      }
    }
    say(`reloaded the allowlist: ${fresh.allow.length} members${closed.length ? `; closed connections of ${closed.join(', ')}` : ''} (limits change only at restart)`)
  }
  const onHup = (): void => { void reload() }
  process.on('SIGHUP', onHup)
  const addrs = node.getMultiaddrs().map((a) => a.toString())
  writeRuntime(paths, { pid: process.pid, peerId: identity.peerId, addrs }, o.readyFile)
  o.ready?.({ peerId: identity.peerId, addrs })
  const l = config.limits
  say(`ready ${config.name} ${addrs.join(' ')} (pid ${process.pid}; ${config.allow.length} members; per relayed connection ${l.data_mib} MiB, ${l.duration_s} s; ${l.reservations} reservations)`)
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    signal.addEventListener('abort', () => resolve(), { once: true })
  })
  process.off('SIGHUP', onHup)
  say('shutting down')
  await directory.stop().catch(() => undefined)
  await reach.stop().catch(() => undefined)
  await Promise.race([node.stop(), new Promise((r) => setTimeout(r, 3000))])
  clearRuntime(paths)
}
