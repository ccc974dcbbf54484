// serve, ping: run the agent; check a peer is reachable.
import { openAgent, startNode, writeRuntime, clearRuntime } from '../../agent/agent.ts'
import { findPeer } from '../../agent/config.ts'
import { ConfigError } from '../../agent/errors.ts'
import { PeerUnreachableError } from '../../net/errors.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { startServices, type ServeHooks } from '../../agent/serve.ts'
import { JsonLog } from '../../agent/log.ts'
import { interactive, type Output } from '../output.ts'

export async function serveCommand(home: string, o: { readyFile?: string }, out: Output, signal: AbortSignal, hooks?: ServeHooks): Promise<void> {
  const agent = openAgent(home)
  const node = await startNode(agent)
  const log = new JsonLog(agent.paths.logs)
  // Last resort (issue 16): every handler settles its own errors (serve.ts `track`), so this should
  // never fire; if a bug lets one escape anyway, it costs one logged line, never the serving agent.
  const lastResort = (what: string) => (err: unknown): void => {
    const line = `mpc-agent serve: internal error (${what}), still serving: ${(err as Error)?.message ?? String(err)}`
    try {
      process.stderr.write(line + '\n')
      log.write('error', line, { stack: (err as Error)?.stack?.split('\n').slice(0, 8).join('\n') })
    } catch {
      // nowhere left to report it
    }
  }
  const onRejection = lastResort('unhandled rejection')
  const onException = lastResort('uncaught exception')
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  try {
    await serveUntil(agent, node, log, o, out, signal, hooks)
  } finally {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }
}

async function serveUntil(agent: ReturnType<typeof openAgent>, node: Awaited<ReturnType<typeof startNode>>, log: JsonLog, o: { readyFile?: string }, out: Output, signal: AbortSignal, hooks?: ServeHooks): Promise<void> {
  const services = await startServices(agent, node, {
    emit: (e) => {
      out.event(e)
      if (e.type === 'abort' || e.type === 'decision') log.write(e.type === 'abort' ? 'warn' : 'info', e.type, { event: e })
    },
    log: (line) => {
      out.log(line)
      log.write('info', line)
    },
    hooks,
    // manual approval at the terminal when a person is there; otherwise `mpc-agent approve` decides
    approve: interactive(out) && process.stdin.isTTY
      ? async (p, signal) => {
        const { promptApproval } = await import('../../ui/render.ts')
        const timedOut = new Promise<boolean>((r) => signal.addEventListener('abort', () => r(false), { once: true }))
        return Promise.race([promptApproval(p).then((d) => d === 'approve'), timedOut])
      }
      : undefined
  })
  const addrs = node.getMultiaddrs().map((a) => a.toString())
  writeRuntime(agent.paths, { pid: process.pid, peerId: agent.identity.peerId, addrs }, o.readyFile)
  out.event({ v: 1, type: 'ready', peerId: agent.identity.peerId, addrs })
  process.stderr.write(`mpc-agent serve: ready ${agent.config.name} ${addrs.join(' ')}\n`)
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  out.log('mpc-agent serve: shutting down')
  await services.stop()
  await node.stop()
  clearRuntime(agent.paths)
}

export async function pingCommand(home: string, name: string, o: { count: number }, out: Output): Promise<void> {
  const agent = openAgent(home)
  const peer = findPeer(agent.config, name)
  if (!peer) throw new ConfigError(`no peer named "${name}": see \`mpc-agent peers list\``)
  const node = await startNode(agent, [])
  try {
    const rtts: number[] = []
    for (let i = 0; i < o.count; i++) {
      try {
        rtts.push(await node.services.ping.ping(multiaddr(peer.addr), { signal: AbortSignal.timeout(10_000) }))
      } catch (err) {
        throw new PeerUnreachableError(peer.name, (err as Error).message)
      }
      out.log(`ping ${peer.name}: rtt=${rtts.at(-1)} ms`)
    }
    if (out.opts.json) out.data({ peer: peer.name, peerId: peer.peerId, rttMs: rtts })
    else out.result(`${peer.name} reachable: ${rtts.length} pings, min/avg/max ${Math.min(...rtts)}/${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(1)}/${Math.max(...rtts)} ms`)
  } finally {
    await node.stop()
  }
}
