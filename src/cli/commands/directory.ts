// peers publish | discover: a directory of peers at a relay (protocols/directory.md). Publishing
// hands the directory this agent's own signed entry; discovering lists the entries it holds, each
// checked here. Neither changes the allowlist: adding a discovered peer is `peers import`.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { openAgent } from '../../agent/agent.ts'
import { ConfigError } from '../../agent/errors.ts'
import { targetPeerOf, type SignedPeerEntryV2 } from '../../agent/peer-entry-v2.ts'
import { parsePeer } from '../../crypto/peer.ts'
import { createAgentNode, type AgentNode } from '../../net/node.ts'
import { PeerUnreachableError } from '../../net/errors.ts'
import { discoverEntries, publishEntry } from '../../directory/client.ts'
import { signOwnEntry, type EntryOptions } from './identity.ts'
import type { Output } from '../output.ts'

/**
 * RELAY as given: the name of a relay in config.yaml `relays:` (`mpc-agent relays add`), or a
 * multiaddr ending in /p2p/<relay peer ID>.
 */
function parseRelay(home: string, raw: string): { addr: Multiaddr; peerId: string; label: string } {
  if (!raw.startsWith('/')) {
    const r = (openAgent(home).config.relays ?? []).find((x) => x.name === raw)
    if (!r) throw new ConfigError(`RELAY "${raw}" is neither a multiaddr nor a relay in config.yaml \`relays:\` (see \`mpc-agent relays list\`)`)
    return { addr: multiaddr(r.addr), peerId: r.peerId, label: `relay ${r.name}` }
  }
  let addr: Multiaddr
  try {
    addr = multiaddr(raw)
  } catch {
    throw new ConfigError(`RELAY "${raw}" is not a multiaddr (example: /ip4/203.0.113.7/tcp/41002/p2p/12D3KooW...)`)
  }
  if (addr.getComponents().some((c) => c.name === 'p2p-circuit')) throw new ConfigError(`RELAY "${raw}": give the relay's own address (\`mpc-agent relay id\`), without /p2p-circuit`)
  const peerId = targetPeerOf(raw)
  if (!peerId) throw new ConfigError(`RELAY "${raw}" has no /p2p/<peer-id>: append the relay's peer ID (its operator prints it with \`mpc-agent relay id\`)`)
  try {
    parsePeer(peerId)
  } catch (e) {
    throw new ConfigError(`RELAY "${raw}": ${(e as Error).message}`)
  }
  return { addr, peerId, label: `relay ${raw}` }
}

/**
 * A short-lived node that dials only the relay named on the command line: its allowlist holds the
 * relay's peer ID and nobody else's, and it listens nowhere. Naming the relay IS the operator's
 * consent to talk to it; the agent's configured allowlist (config.yaml peers) is not touched.
 */
async function withRelayNode<T>(home: string, relay: { peerId: string; label: string }, fn: (node: AgentNode) => Promise<T>): Promise<T> {
  const agent = openAgent(home)
  const node = await createAgentNode({ privateKey: agent.identity.privateKey, listen: [], announce: [], allow: new Set([relay.peerId]) })
  await node.start()
  try {
    return await fn(node)
  } catch (err) {
    // the dial wording speaks of agents; say what it means for a relay
    if (err instanceof PeerUnreachableError) {
      throw new PeerUnreachableError(relay.label, err.detail
        .replace('is `mpc-agent serve` running there', 'is `mpc-agent relay serve` running there')
        .replace(/its allowlist probably does not have this agent \(.*\)$/, `the relay's allowlist probably does not have this agent (its operator adds you with \`mpc-agent relay allow NAME <your peer ID from mpc-agent id>\`)`))
    }
    throw err
  } finally {
    await node.stop()
  }
}

export async function peersPublish(home: string, relayArg: string, o: EntryOptions, out: Output, signal: AbortSignal): Promise<void> {
  const relay = parseRelay(home, relayArg)
  const entry = signOwnEntry(home, o)
  const label = relay.label
  const r = await withRelayNode(home, relay, (node) => publishEntry(node, relay.addr, entry, { label, signal }))
  const exp = new Date(entry.exp * 1000).toISOString()
  if (out.opts.json) out.data({ relay: relayArg, peerId: entry.peerId, seq: entry.seq, exp: entry.exp, change: r.change })
  else out.result(`published ${entry.name}'s entry to ${label} (${r.change}; seq ${entry.seq}, expires ${exp}): others see it with \`mpc-agent peers discover ${relayArg}\``)
}

function describe(e: SignedPeerEntryV2): string {
  const extra = [
    ...(e.datasets?.length ? [`datasets ${e.datasets.join(',')}`] : []),
    ...(e.policy ? [`policy approval=${e.policy.approval} min_providers=${e.policy.min_providers} max_cells=${e.policy.max_cells} dp_required=${e.policy.dp_required}`] : [])
  ]
  return [
    `${e.name.padEnd(20)} ${e.role.padEnd(9)} ${e.peerId}`,
    ...e.addrs.map((a) => `    addr    ${a}`),
    `    expires ${new Date(e.exp * 1000).toISOString()} (seq ${e.seq})`,
    ...extra.map((x) => `    ${x}`)
  ].join('\n')
}

export async function peersDiscover(home: string, relayArg: string, o: { name?: string }, out: Output, signal: AbortSignal): Promise<void> {
  const relay = parseRelay(home, relayArg)
  const label = relay.label
  const found = await withRelayNode(home, relay, (node) => discoverEntries(node, relay.addr, { label, signal }))
  for (const r of found.rejected) out.log(`mpc-agent: warning: ${label} served an entry that fails a check here, left out: ${r.reason}`)
  const entries = o.name === undefined ? found.entries : found.entries.filter((e) => e.name === o.name || e.peerId === o.name)
  if (o.name !== undefined && entries.length === 0) throw new ConfigError(`${label} has no valid entry named "${o.name}": run \`mpc-agent peers discover ${relayArg}\` to see which it has`)
  // --json: the signed entries verbatim, one per line: exactly what `peers import -` reads
  if (out.opts.json) {
    for (const e of entries) out.data(e)
  } else {
    out.result(entries.length ? entries.map(describe).join('\n') : `(${label} holds no valid entries)`)
  }
  if (entries.length) {
    out.log(`These are claims signed by each peer's key; the relay vouches for none of them and nothing was added to your allowlist.`)
    out.log(`Confirm a peer's ID with its operator, then: mpc-agent --json peers discover ${relayArg} --name NAME | mpc-agent peers import -`)
  }
}
