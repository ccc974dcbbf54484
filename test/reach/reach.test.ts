// The reachability check through a relay (protocols/reach.md): what the relay agrees to dial, the
// message bounds, and the check itself between a real relay node and a real agent node on 127.0.0.1.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createServer, type Server } from 'node:net'
import { dialBackPlan, decodeReachRequest, decodeReachResponse, encodeReach, tcpTarget, MAX_ADDRS, ReachProtocolError } from '../../src/reach/protocol.ts'
import { utf8 } from '../../src/crypto/bytes.ts'

const ME = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const OTHER = '12D3KooWExwD8ipdCi8D8uVYrpjevnCVfz2Dhi3xyzcZ2GG1jpgL'

describe('dialBackPlan: the relay dials only the member, only where it connects from', () => {
  it('an address at the observed IP is dialled as named, with the member\'s own peer ID', () => {
    expect(dialBackPlan(ME, '203.0.113.7', [`/ip4/203.0.113.7/tcp/41001/p2p/${ME}`])).toEqual([
      { addr: `/ip4/203.0.113.7/tcp/41001/p2p/${ME}`, target: `/ip4/203.0.113.7/tcp/41001/p2p/${ME}` }
    ])
  })
  it('a private address behind NAT is not_yours, and its port is tried at the observed address (a forwarded port)', () => {
    const plan = dialBackPlan(ME, '203.0.113.7', ['/ip4/10.0.0.5/tcp/41001'])
    expect(plan[0]).toMatchObject({ addr: '/ip4/10.0.0.5/tcp/41001', target: null, verdict: 'not_yours' })
    expect(plan[1]).toEqual({ addr: '/ip4/203.0.113.7/tcp/41001', target: `/ip4/203.0.113.7/tcp/41001/p2p/${ME}` })
  })
  it('never a third party: another peer ID, or another host, is never a target', () => {
    const plan = dialBackPlan(ME, '203.0.113.7', [`/ip4/203.0.113.7/tcp/1/p2p/${OTHER}`, '/ip4/198.51.100.1/tcp/22', '/dns4/example.com/tcp/80', `/ip4/203.0.113.7/tcp/2/p2p/${OTHER}/p2p-circuit/p2p/${ME}`])
    for (const p of plan) if (p.target) expect(p.target).toMatch(new RegExp(`^/ip4/203\\.0\\.113\\.7/tcp/\\d+/p2p/${ME}$`))
    expect(plan.filter((p) => p.target).map((p) => p.target)).toEqual([`/ip4/203.0.113.7/tcp/22/p2p/${ME}`])
    expect(plan.filter((p) => !p.target).map((p) => p.verdict)).toEqual(['not_yours', 'not_yours', 'unreachable', 'unreachable'])
  })
  it('at most MAX_ADDRS addresses, each target once', () => {
    const addrs = Array.from({ length: 20 }, (_, i) => `/ip4/10.0.0.${i}/tcp/41001`)
    const plan = dialBackPlan(ME, '203.0.113.7', addrs)
    expect(plan.filter((p) => p.target)).toHaveLength(1)
    expect(plan.filter((p) => !p.target)).toHaveLength(MAX_ADDRS)
  })
  it('tcpTarget reads only /ip4|ip6/…/tcp/…[/p2p/…]', () => {
    expect(tcpTarget('/ip6/::1/tcp/5/p2p/' + ME)).toEqual({ ip: '::1', port: 5, peer: ME })
    for (const a of ['/ip4/1.2.3.4/udp/5', '/ip4/1.2.3.4/tcp/0', 'nonsense', '/ip4/1.2.3.4/tcp/5/ws']) expect(tcpTarget(a), a).toBeNull()
  })
})

describe('messages', () => {
  it('round-trip, and refuse what the spec does not allow', () => {
    expect(decodeReachRequest(encodeReach({ v: 1, type: 'check', addrs: ['/ip4/1.2.3.4/tcp/5'] }))).toEqual({ v: 1, type: 'check', addrs: ['/ip4/1.2.3.4/tcp/5'] })
    for (const bad of ['{"v":1,"type":"check","addrs":[]}', '{"v":2,"type":"check","addrs":["a"]}', '{"v":1,"type":"check","addrs":["a"],"x":1}',
      JSON.stringify({ v: 1, type: 'check', addrs: Array.from({ length: MAX_ADDRS + 1 }, () => 'a') }), '{"v":1,"type":"check","addrs":[1]}', 'not json']) {
      expect(() => decodeReachRequest(utf8(bad)), bad).toThrow(ReachProtocolError)
    }
    const res = { v: 1 as const, type: 'result' as const, observed: '127.0.0.1', results: [{ addr: 'a', result: 'reachable' as const, detail: 'd' }] }
    expect(decodeReachResponse(encodeReach(res))).toEqual(res)
    expect(() => decodeReachResponse(utf8('{"v":1,"type":"result","observed":"x","results":[{"addr":"a","result":"yes","detail":""}]}'))).toThrow(ReachProtocolError)
  })
})

describe('a check between a real relay and a real agent (TCP + Noise + yamux on 127.0.0.1)', () => {
  let relay: Awaited<ReturnType<typeof import('../../src/relay/node.ts')['createRelayNode']>>
  let agent: Awaited<ReturnType<typeof import('../../src/net/node.ts')['createAgentNode']>>
  let ref: { name: string; addr: string; peerId: string }
  let agentId: string
  let closed: Server
  let closedPort: number
  const lines: string[] = []
  beforeAll(async () => {
    const { createRelayNode } = await import('../../src/relay/node.ts')
    const { createAgentNode } = await import('../../src/net/node.ts')
    const { mountReach } = await import('../../src/reach/server.ts')
    const { DEFAULT_RELAY_LIMITS } = await import('../../src/relay/limits.ts')
    const rk = await generateKeyPair('Ed25519')
    const ak = await generateKeyPair('Ed25519')
    const relayId = peerIdFromPrivateKey(rk).toString()
    agentId = peerIdFromPrivateKey(ak).toString()
    relay = await createRelayNode({ privateKey: rk, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set([agentId]), limits: DEFAULT_RELAY_LIMITS })
    await relay.start()
    await mountReach(relay, { log: (l) => lines.push(l), dialBackTimeoutMs: 2000 })
    ref = { name: 'hub', addr: relay.getMultiaddrs()[0]!.toString(), peerId: relayId }
    agent = await createAgentNode({ privateKey: ak, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set(), relays: [ref] })
    await agent.start()
    // a port that is open but never speaks Noise, and is closed after the test
    closed = createServer((s) => s.destroy())
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    closedPort = (closed.address() as { port: number }).port
  }, 30_000)
  afterAll(async () => {
    closed?.close()
    await Promise.all([agent?.stop(), relay?.stop()])
  })

  it('the agent\'s own listen address is reachable; another host is not_yours; a port without the agent is unreachable; a second check within 10 s is refused', async () => {
    const { checkReach } = await import('../../src/reach/client.ts')
    const own = agent.getMultiaddrs()[0]!.toString()
    const r = await checkReach(agent, ref, [own, '/ip4/10.1.2.3/tcp/9', `/ip4/127.0.0.1/tcp/${closedPort}`])
    expect(r.observed).toBe('127.0.0.1')
    expect(r.direct).toBe(true)
    const by = new Map(r.results.map((x) => [x.addr, x.result]))
    expect(by.get(own)).toBe('reachable')
    expect(by.get('/ip4/10.1.2.3/tcp/9')).toBe('not_yours')
    expect(by.get(`/ip4/127.0.0.1/tcp/${closedPort}`)).toBe('unreachable')
    expect(lines.join('\n')).toContain(`reach: ${agentId} connects from 127.0.0.1`)
    await expect(checkReach(agent, ref, [own])).rejects.toThrow(/one check per 10 s/)
  }, 30_000)
})

describe('the relay\'s checks are bounded in total, not only per member', () => {
  it('with one check allowed at a time, a second member asking meanwhile is told to ask later; the first gets its answer', async () => {
    const { createRelayNode } = await import('../../src/relay/node.ts')
    const { createAgentNode } = await import('../../src/net/node.ts')
    const { mountReach } = await import('../../src/reach/server.ts')
    const { checkReach } = await import('../../src/reach/client.ts')
    const { DEFAULT_RELAY_LIMITS } = await import('../../src/relay/limits.ts')
    const rk = await generateKeyPair('Ed25519')
    const keys = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const ids = keys.map((k) => peerIdFromPrivateKey(k).toString())
    const relay = await createRelayNode({ privateKey: rk, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set(ids), limits: DEFAULT_RELAY_LIMITS })
    await relay.start()
    await mountReach(relay, { log: () => {}, dialBackTimeoutMs: 1500, maxConcurrent: 1 })
    const ref = { name: 'hub', addr: relay.getMultiaddrs()[0]!.toString(), peerId: peerIdFromPrivateKey(rk).toString() }
    const agents = await Promise.all(keys.map(async (k) => {
      const a = await createAgentNode({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allow: new Set(), relays: [ref] })
      await a.start()
      return a
    }))
    // accepts and never answers: the first member's dial-back there runs until its timeout
    const silent: Server = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const port = (silent.address() as { port: number }).port
    try {
      const first = checkReach(agents[0]!, ref, [`/ip4/127.0.0.1/tcp/${port}`])
      await new Promise((r) => setTimeout(r, 300))
      await expect(checkReach(agents[1]!, ref, [agents[1]!.getMultiaddrs()[0]!.toString()])).rejects.toThrow(/checking other members right now/)
      const r = await first
      expect(r.results[0]?.result).toBe('unreachable')
    } finally {
      silent.close()
      await Promise.all([...agents.map((a) => a.stop()), relay.stop()])
    }
  }, 30_000)
})
