// serve, ping: run the agent; check a peer is reachable.
import { openAgent, startNode, writeRuntime, clearRuntime, readRuntime, type RuntimeInfo } from '../../agent/agent.ts'
import { findPeer, loadConfig } from '../../agent/config.ts'
import { peerNamer } from '../../agent/context.ts'
import { ConfigError } from '../../agent/errors.ts'
import { PeerUnreachableError } from '../../net/errors.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { describeDialError, relayNameOf, updateAllowlist } from '../../net/node.ts'
import { isCircuit, keepReservations, linkTo, relayOfAddr } from '../../net/relays.ts'
import { checkReach, describeReach, type ReachReport } from '../../reach/client.ts'
import { MAX_ADDRS, tcpTarget } from '../../reach/protocol.ts'
import { startServices, type ServeHooks } from '../../agent/serve.ts'
import { auditedAbort } from '../../agent/evidence-files.ts'
import { JsonLog } from '../../agent/log.ts'
import { interactive, type Output } from '../output.ts'

/** The TCP ports of listen multiaddrs, for the "port in use" message. */
function portsOf(listen: string[]): string[] {
  return listen.flatMap((a) => {
    try {
      const c = multiaddr(a).getComponents().find((x) => x.name === 'tcp')
      return c?.value && c.value !== '0' ? [c.value] : []
    } catch {
      return []
    }
  })
}

export async function serveCommand(home: string, o: { readyFile?: string }, out: Output, signal: AbortSignal, hooks?: ServeHooks): Promise<void> {
  const agent = openAgent(home)
  const log = new JsonLog(agent.paths.logs)
  // one serve per home: a second one would fight over the control socket, serve.json and the port
  const other = readRuntime(agent.paths)
  if (other && other.pid !== process.pid) throw new ConfigError(`serve (pid ${other.pid}) already runs on ${agent.paths.dir}: stop it first (\`kill ${other.pid}\`)`)
  const nameOf = peerNamer(agent)
  const onRefused = (peerId: string, reason: string): void => {
    const line = `refused connection from ${nameOf(peerId)}: ${reason}`
    out.log(`mpc-agent serve: ${line}`)
    log.write('warn', 'connection_refused', { peer: peerId, reason })
  }
  let node
  try {
    node = await startNode(agent, undefined, onRefused)
  } catch (err) {
    const text = `${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`
    if (/EADDRINUSE|address already in use|failed to be listened on/i.test(text)) {
      const ports = portsOf(agent.config.listen)
      const what = ports.length ? `port ${ports.join(', ')} ${ports.length > 1 ? 'are' : 'is'} in use` : `a listen address (${agent.config.listen.join(', ')}) cannot be bound`
      throw new ConfigError(`${what} (another serve, or another program: \`ss -ltnp\` shows which); change \`listen:\` in ${agent.paths.config}`)
    }
    throw err
  }

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
  const nameOf = peerNamer(agent)
  const services = await startServices(agent, node, {
    emit: (e) => {
      out.event(e)
      // an abort's evidence (up to 1 MiB of a peer's messages) is kept once, in its bundle file: the log gets a summary
      if (e.type === 'abort' || e.type === 'decision') log.write(e.type === 'abort' ? 'warn' : 'info', e.type, { event: e.type === 'abort' ? { ...e, abort: auditedAbort(e.abort) } : e })
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
  // SIGHUP: re-read config.yaml (peers, datasets). A removed peer, or one whose ID, address or role
  // changed, loses its open connections at once; a broken config.yaml is refused and the old one kept.
  // policy.yaml needs no signal: it is re-read for every proposal.
  const liveNode = node
  const reload = async (): Promise<void> => {
    let fresh
    try {
      fresh = loadConfig(agent.paths.config)
    } catch (e) {
      const line = `reload refused, keeping the running configuration: ${(e as Error).message}`
      out.log(`mpc-agent serve: ${line}`)
      log.write('warn', 'reload_failed', { error: (e as Error).message })
      return
    }
    const before = new Map(agent.config.peers.map((p) => [p.name, p]))
    const changed: string[] = []
    const lines: string[] = []
    for (const p of fresh.peers) {
      const old = before.get(p.name)
      if (!old) lines.push(`added ${p.role} ${p.name}`)
      else if (old.peerId !== p.peerId || old.addr !== p.addr || old.role !== p.role) {
        lines.push(`changed ${p.name}`)
        changed.push(old.peerId)
      }
      before.delete(p.name)
    }
    for (const p of before.values()) lines.push(`removed ${p.name}`)
    const prevDatasets = agent.config.datasets
    agent.config.peers = fresh.peers
    agent.config.datasets = fresh.datasets
    try {
      services.reloadDatasets()
    } catch (e) {
      agent.config.datasets = prevDatasets
      out.log(`mpc-agent serve: reload kept the old datasets: ${(e as Error).message}`)
    }
    const closed = await updateAllowlist(liveNode, fresh.peers.map((p) => p.peerId), changed)
    const summary = `reloaded ${agent.paths.config}: ${lines.length ? lines.join(', ') : 'no peer changes'}${closed.length ? `; closed connections of ${closed.map(nameOf).join(', ')}` : ''}`
    out.log(`mpc-agent serve: ${summary}`)
    log.write('info', 'reload', { changes: lines, closed })
  }
  const onHup = (): void => { void reload() }
  process.on('SIGHUP', onHup)
  // behind NAT: listen through the configured relays (README "Across firewalls"), and keep doing so
  const relays = agent.config.relays ?? []
  let ready = false
  // the last reachability check (protocols/reach.md): serve.json carries it for `id`
  let reach: ReachReport | undefined
  let checking = false
  let failedChecks = 0
  const runtime = (): RuntimeInfo => ({ pid: process.pid, peerId: agent.identity.peerId, addrs: node.getMultiaddrs().map((a) => a.toString()), ...(reach ? { reach } : {}) })
  // ask a relay we hold a reservation on to dial us back at our direct addresses (the announced ones first,
  // then those bound; IP addresses only: a DNS name is not checked); once it answered, not again (a restart
  // checks again)
  const checkDirect = async (): Promise<void> => {
    const r = relays.find((x) => keeper?.reserved().includes(x.peerId))
    const candidates = [...agent.config.announce, ...node.getMultiaddrs().map((a) => a.toString())].filter((a) => !isCircuit(a) && tcpTarget(a) !== null)
    const direct = [...new Set(candidates)].slice(0, MAX_ADDRS)
    if (reach || checking || !r || !direct.length) return
    checking = true
    try {
      reach = await checkReach(node, r, direct, { signal })
      const line = `direct reachability: ${describeReach(reach)}`
      out.log(`mpc-agent serve: ${line}`)
      log.write('info', line, { reach })
      writeRuntime(agent.paths, runtime())
    } catch (e) {
      if (signal.aborted) return
      // a busy relay (or one that just restarted) is asked again a little later, a few times
      const again = ++failedChecks < 4
      out.log(`mpc-agent serve: direct reachability not checked through relay ${r.name}: ${(e as Error).message}${again ? '; asking again in 15 s' : ''}`)
      if (again) setTimeout(() => { void checkDirect() }, 15_000).unref()
    } finally {
      checking = false
    }
  }
  const keeper = relays.length
    ? keepReservations(node, relays, {
      log: (l) => { out.log(`mpc-agent serve: ${l}`); log.write('info', l) },
      // serve.json follows the reservations: `id --entry` lists the relayed addresses held right now;
      // a reservation gained after start-up also lets the reachability check run
      onChange: () => {
        if (!ready) return
        writeRuntime(agent.paths, runtime())
        void checkDirect()
      }
    })
    : null
  // a relay that answers gives its reservation within a second or two; a missing one must not hold serve up
  if (keeper) await Promise.race([keeper.first, new Promise((r) => setTimeout(r, 5000))])
  const { addrs } = runtime()
  ready = true
  writeRuntime(agent.paths, runtime(), o.readyFile)
  out.event({ v: 1, type: 'ready', peerId: agent.identity.peerId, addrs })
  process.stderr.write(`mpc-agent serve: ready ${agent.config.name} ${addrs.join(' ')} (pid ${process.pid}; SIGHUP reloads config.yaml)\n`)
  if (keeper) {
    const via = relays.filter((r) => keeper.reserved().includes(r.peerId)).map((r) => r.name)
    process.stderr.write(`mpc-agent serve: reachable through relay${via.length === 1 ? '' : 's'} ${via.length ? via.join(', ') : '(none yet: retrying)'}; asking ${via.length ? via[0] : 'it'} to dial this agent back at its direct addresses (README "Across firewalls")\n`)
    void checkDirect()
  }
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  process.off('SIGHUP', onHup)
  keeper?.stop()
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
        rtts.push(await node.services.ping.ping(multiaddr(peer.addr), { signal: AbortSignal.timeout(10_000), runOnLimitedConnection: true }))
      } catch (err) {
        throw new PeerUnreachableError(peer.name, describeDialError(err, peer.addr, 10_000, (id) => relayNameOf(node, id)))
      }
      out.log(`ping ${peer.name}: rtt=${rtts.at(-1)} ms`)
    }
    // how the pings went: direct, relayed (through which relay), or upgraded (DCUtR turned a
    // relayed connection into a direct one while we pinged; measured, never assumed)
    const link = linkTo(node.getConnections(peerIdFromString(peer.peerId)), peer.addr)
    const relay = link?.relay ?? relayOfAddr(peer.addr)
    const how = link?.kind === 'relayed' ? `relayed via ${relay ? relayNameOf(node, relay) : 'a relay'}` : link?.kind ?? 'closed'
    if (out.opts.json) out.data({ peer: peer.name, peerId: peer.peerId, rttMs: rtts, link: link?.kind ?? null, ...(link?.kind === 'relayed' && relay ? { relay: relayNameOf(node, relay) } : {}) })
    else out.result(`${peer.name} reachable (${how}): ${rtts.length} pings, min/avg/max ${Math.min(...rtts)}/${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(1)}/${Math.max(...rtts)} ms`)
  } finally {
    await node.stop()
  }
}
