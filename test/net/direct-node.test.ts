// A direct-only node (createAgentNode `direct`, what `query run` builds when no relay is involved):
// it runs without the relay client, identify and DCUtR, still talks to a full node (a provider's
// serve) over real TCP + Noise + yamux, and is never built when a relay is in play.
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createAgentNode, handleProtocol, openChannel } from '../../src/net/node.ts'
import { channelFromStream } from '../../src/net/framing.ts'
import { directOnly, startNode, type Agent } from '../../src/agent/agent.ts'
import type { Channel } from '../../src/protocol/transport.ts'

describe('direct-only node', () => {
  it('has no relay client, identify or DCUtR, and exchanges frames with a full node that has them', async () => {
    const full = await generateKeyPair('Ed25519')
    const lean = await generateKeyPair('Ed25519')
    const fullId = peerIdFromPrivateKey(full).toString()
    const leanId = peerIdFromPrivateKey(lean).toString()
    const server = await createAgentNode({ privateKey: full, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set([leanId]) })
    const client = await createAgentNode({ privateKey: lean, listen: [], allow: new Set([fullId]), direct: true })
    await Promise.all([server.start(), client.start()])
    try {
      expect(Object.keys(client.services).sort()).toEqual(['ping'])
      expect(Object.keys(server.services).sort()).toEqual(['dcutr', 'identify', 'ping', 'relayListener'])
      const got = Promise.withResolvers<Channel>()
      await handleProtocol(server, '/test/direct/1', (stream, remote) => { got.resolve(channelFromStream(stream, remote)) })
      const tx = await openChannel(client, `${server.getMultiaddrs()[0]}`, '/test/direct/1')
      await tx.send(new TextEncoder().encode('hello'))
      const rx = await got.promise
      expect(rx.remote).toBe(leanId) // the Noise-authenticated peer, as with a full node
      expect(new TextDecoder().decode(await rx.receive())).toBe('hello')
      // the server's identify request to the client fails (it has no identify): the connection stays usable
      await new Promise((r) => setTimeout(r, 200))
      await rx.send(new TextEncoder().encode('back'))
      expect(new TextDecoder().decode(await tx.receive())).toBe('back')
      // ping, which the server's connection monitor uses, is answered
      expect(await server.services.ping.ping(client.peerId)).toBeGreaterThanOrEqual(0)
    } finally {
      await Promise.all([client.stop(), server.stop()])
    }
  }, 30_000)

  it('startNode builds it for a dialling-only command with no relay involved, never for serve', async () => {
    const key = await generateKeyPair('Ed25519')
    const p1 = '12D3KooWCoC7fcWZ9t15SsEXGKhi5YqLkZP7UBBvhwQTBSpMvqne'
    const relay = { name: 'r', addr: '/ip4/127.0.0.1/tcp/4200/p2p/12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8', peerId: '12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8' }
    const agent = (relays: typeof relay[]): Agent => ({
      identity: { privateKey: key, peerId: peerIdFromPrivateKey(key).toString() },
      config: { name: 'city', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], peers: [{ name: 'p1', peerId: p1, addr: `/ip4/127.0.0.1/tcp/41001/p2p/${p1}`, role: 'provider' }], datasets: {}, relays }
    }) as unknown as Agent
    const services = async (a: Agent, listen: string[] | undefined, directTo?: string[]): Promise<string[]> => {
      const node = await startNode(a, listen, undefined, directTo ? { directTo } : {})
      try {
        return Object.keys(node.services).sort()
      } finally {
        await node.stop()
      }
    }
    expect(await services(agent([]), [], [p1])).toEqual(['ping']) // query run
    expect(await services(agent([relay]), [], [p1])).toContain('identify') // this agent uses a relay
    expect(await services(agent([]), [])).toContain('identify') // no directTo: a command that did not ask
    expect(await services(agent([]), undefined, [p1])).toContain('identify') // listening (serve) is never direct
  })

  it('is refused with listen addresses or relays, and chosen only when no relay is involved', async () => {
    const key = await generateKeyPair('Ed25519')
    await expect(createAgentNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set(), direct: true })).rejects.toThrow(/neither listens nor uses relays/)
    await expect(createAgentNode({ privateKey: key, listen: [], allow: new Set(), direct: true, relays: [{ name: 'r', addr: '/ip4/127.0.0.1/tcp/4200/p2p/12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8', peerId: '12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8' }] })).rejects.toThrow(/neither listens nor uses relays/)
    const p1 = '12D3KooWCoC7fcWZ9t15SsEXGKhi5YqLkZP7UBBvhwQTBSpMvqne'
    const p2 = '12D3KooWQj7nwRjK7YrYCpfdC3aYomncEMGkUVxcoLGGo1afycvW'
    const relay = '12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8'
    const agent = (peers: Array<[string, string]>, relays: Array<{ name: string; addr: string; peerId: string }> = []): Agent => ({
      config: { peers: peers.map(([peerId, addr], i) => ({ name: `p${i}`, peerId, addr, role: 'provider' })), relays }
    }) as unknown as Agent
    const direct = (id: string): [string, string] => [id, `/ip4/127.0.0.1/tcp/4100${id === p1 ? 1 : 2}/p2p/${id}`]
    expect(directOnly(agent([direct(p1), direct(p2)]), [p1, p2])).toBe(true)
    // a provider behind a relay: the relay client is needed to dial it
    expect(directOnly(agent([direct(p1), [p2, `/ip4/127.0.0.1/tcp/4200/p2p/${relay}/p2p-circuit/p2p/${p2}`]]), [p1, p2])).toBe(false)
    // ...but only when it takes part
    expect(directOnly(agent([direct(p1), [p2, `/ip4/127.0.0.1/tcp/4200/p2p/${relay}/p2p-circuit/p2p/${p2}`]]), [p1])).toBe(true)
    // this agent uses a relay itself
    expect(directOnly(agent([direct(p1)], [{ name: 'r', addr: `/ip4/127.0.0.1/tcp/4200/p2p/${relay}`, peerId: relay }]), [p1])).toBe(false)
    // a participant that is not a configured peer: not decided here (the run fails on it with its own message)
    expect(directOnly(agent([direct(p1)]), [p1, p2])).toBe(false)
  })
})

describe('a relay listed in relays: is no party', () => {
  it('may connect, but every stream it opens on our protocols is aborted; an allowlisted peer on the same protocol is served', async () => {
    const [agentKey, relayKey, partyKey] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const [agentId, relayId, partyId] = [agentKey, relayKey, partyKey].map((k) => peerIdFromPrivateKey(k).toString()) as [string, string, string]
    const agent = await createAgentNode({
      privateKey: agentKey, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set([partyId]),
      relays: [{ name: 'hub', addr: `/ip4/127.0.0.1/tcp/1/p2p/${relayId}`, peerId: relayId }]
    })
    const relay = await createAgentNode({ privateKey: relayKey, listen: [], allow: new Set([agentId]), direct: true })
    const party = await createAgentNode({ privateKey: partyKey, listen: [], allow: new Set([agentId]), direct: true })
    await Promise.all([agent.start(), relay.start(), party.start()])
    try {
      const handled: string[] = []
      await handleProtocol(agent, '/test/party/1', async (stream, remote) => {
        handled.push(remote)
        const ch = channelFromStream(stream, remote)
        await ch.send(await ch.receive())
      })
      const addr = `${agent.getMultiaddrs()[0]}`
      // the relay's connection is admitted (it carries reservations), its stream is not
      const fromRelay = await openChannel(relay, addr, '/test/party/1')
      expect(relay.getConnections().length).toBe(1)
      await fromRelay.send(new TextEncoder().encode('ping')).catch(() => undefined)
      await expect(fromRelay.receive({ signal: AbortSignal.timeout(5000) })).rejects.toThrow()
      // the allowlisted party, on the same protocol, is answered
      const fromParty = await openChannel(party, addr, '/test/party/1')
      await fromParty.send(new TextEncoder().encode('ping'))
      expect(new TextDecoder().decode(await fromParty.receive({ signal: AbortSignal.timeout(5000) }))).toBe('ping')
      expect(handled).toEqual([partyId])
    } finally {
      await Promise.all([agent.stop(), relay.stop(), party.stop()])
    }
  }, 30_000)
})
