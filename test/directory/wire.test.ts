// The directory protocol between real libp2p nodes in one process (TCP on 127.0.0.1, Noise, yamux):
// a silent client is answered and let go at the deadline, an oversized request is cut off, and a
// client refuses a directory that answers outside the protocol or pages without moving on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createAgentNode, type AgentNode } from '../../src/net/node.ts'
import { channelFromStream, encodeFrame } from '../../src/net/framing.ts'
import { mountDirectory, discoverEntries, publishEntry, DIRECTORY_PROTOCOL, DirectoryProtocolError, type MountedDirectory } from '../../src/directory/index.ts'
import { decodeResponse, encodeMessage } from '../../src/directory/messages.ts'
import { MAX_REQUEST_BYTES } from '../../src/directory/constants.ts'
import { signPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'
import { signerFromSeed } from '../../src/crypto/sign.ts'

const nodes: AgentNode[] = []
let server: AgentNode
let dir: MountedDirectory
let serverAddr: Multiaddr
let client: AgentNode
let clientKey: Awaited<ReturnType<typeof generateKeyPair>>
const logs: string[] = []

async function node(key: Awaited<ReturnType<typeof generateKeyPair>>, allow: string[], listen: string[]): Promise<AgentNode> {
  const n = await createAgentNode({ privateKey: key, listen, allow: new Set(allow) })
  await n.start()
  nodes.push(n)
  return n
}

beforeAll(async () => {
  const sk = await generateKeyPair('Ed25519')
  clientKey = await generateKeyPair('Ed25519')
  const sid = peerIdFromPrivateKey(sk).toString()
  const cid = peerIdFromPrivateKey(clientKey).toString()
  server = await node(sk, [cid], ['/ip4/127.0.0.1/tcp/0'])
  dir = await mountDirectory(server, { statePath: join(mkdtempSync(join(tmpdir(), 'dir-wire-')), 'd.jsonl'), log: (l) => logs.push(l), requestTimeoutMs: 300 })
  serverAddr = server.getMultiaddrs()[0] as Multiaddr
  client = await node(clientKey, [sid], [])
}, 30_000)

afterAll(async () => {
  await dir.stop()
  await Promise.all(nodes.map((n) => n.stop()))
})

describe('directory over real libp2p', () => {
  it('publish and list round-trip', async () => {
    const id = peerIdFromPrivateKey(clientKey).toString()
    const e = signPeerEntryV2(signerFromSeed(id, clientKey.raw.subarray(0, 32)), { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${id}`], role: 'provider', seq: 1, exp: Math.floor(Date.now() / 1000) + 60 })
    expect(await publishEntry(client, serverAddr, e, { label: 'd' })).toEqual({ change: 'added', seq: 1 })
    const found = await discoverEntries(client, serverAddr, { label: 'd' })
    expect(found.entries).toEqual([e])
    expect(found.rejected).toEqual([])
  })

  it('a client that opens a stream and sends nothing is answered bad_request at the deadline', async () => {
    const stream = await client.dialProtocol(serverAddr, DIRECTORY_PROTOCOL)
    const ch = channelFromStream(stream, 'server')
    const t0 = Date.now()
    const res = decodeResponse(await ch.receive({ signal: AbortSignal.timeout(5_000) }))
    expect(res).toMatchObject({ type: 'error', code: 'bad_request', detail: 'no request within 300 ms' })
    expect(Date.now() - t0).toBeLessThan(4_000)
    expect(logs.some((l) => /refused a request from .*no request within 300 ms/.test(l))).toBe(true)
  })

  it('a request frame over the limit is cut off before it is buffered', async () => {
    const stream = await client.dialProtocol(serverAddr, DIRECTORY_PROTOCOL)
    const ch = channelFromStream(stream, 'server')
    // a header announcing one byte more than allowed, then a little payload
    stream.send(encodeFrame(new Uint8Array(MAX_REQUEST_BYTES + 1)).subarray(0, 64))
    await expect(ch.receive({ signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
    expect(logs.some((l) => l.includes(`refused a request from ${peerIdFromPrivateKey(clientKey).toString()}: request larger than ${MAX_REQUEST_BYTES} bytes`))).toBe(true)
  })

  it('a malformed request is answered bad_request', async () => {
    const stream = await client.dialProtocol(serverAddr, DIRECTORY_PROTOCOL)
    const ch = channelFromStream(stream, 'server')
    await ch.send(encodeMessage({ v: 1, type: 'list', after: 7 } as never))
    expect(decodeResponse(await ch.receive({ signal: AbortSignal.timeout(5_000) }))).toMatchObject({ type: 'error', code: 'bad_request' })
  })
})

describe('a client facing a hostile directory', () => {
  let hostile: AgentNode
  let hostileAddr: Multiaddr
  let answer: (req: unknown) => Uint8Array

  beforeAll(async () => {
    const hk = await generateKeyPair('Ed25519')
    hostile = await node(hk, [peerIdFromPrivateKey(clientKey).toString()], ['/ip4/127.0.0.1/tcp/0'])
    await hostile.handle(DIRECTORY_PROTOCOL, async (stream) => {
      const ch = channelFromStream(stream, 'client')
      const req = JSON.parse(new TextDecoder().decode(await ch.receive()))
      await ch.send(answer(req))
      await ch.close()
    })
    hostileAddr = hostile.getMultiaddrs()[0] as Multiaddr
    await client.stop()
    const hid = peerIdFromPrivateKey(hk).toString()
    client = await node(clientKey, [hid], [])
  }, 30_000)

  it('refuses an answer outside the protocol', async () => {
    answer = () => new TextEncoder().encode('{"v":1,"type":"entries","entries":"x","more":false}')
    await expect(discoverEntries(client, hostileAddr, { label: 'relay H' })).rejects.toThrow(DirectoryProtocolError)
    await expect(discoverEntries(client, hostileAddr, { label: 'relay H' })).rejects.toThrow(/relay H sent a malformed directory answer/)
  })

  it('stops a directory that pages without moving on', async () => {
    answer = () => encodeMessage({ v: 1, type: 'entries', entries: [], more: true })
    await expect(discoverEntries(client, hostileAddr, { label: 'relay H' })).rejects.toThrow(/said more entries follow but served none newer/)
  })

  it('leaves out forged entries and reports them, keeps the valid ones', async () => {
    const id = peerIdFromPrivateKey(clientKey).toString()
    const good = signPeerEntryV2(signerFromSeed(id, clientKey.raw.subarray(0, 32)), { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${id}`], role: 'provider', seq: 2, exp: Math.floor(Date.now() / 1000) + 60 })
    const forged = { ...good, addrs: [`/ip4/10.6.6.6/tcp/41001/p2p/${id}`], seq: 3 }
    answer = () => encodeMessage({ v: 1, type: 'entries', entries: [forged, good, { junk: true }], more: false })
    const found = await discoverEntries(client, hostileAddr, { label: 'relay H' })
    expect(found.entries).toEqual([good])
    expect(found.rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/does not verify/), expect.stringMatching(/unknown key "junk"|expected version 2/)])
  })

  it('a directory that never answers is a timeout naming it', async () => {
    answer = () => new Uint8Array(0)
    await hostile.unhandle(DIRECTORY_PROTOCOL)
    await hostile.handle(DIRECTORY_PROTOCOL, () => { /* silent */ })
    await expect(discoverEntries(client, hostileAddr, { label: 'relay H', timeoutMs: 500 })).rejects.toThrow(/relay H is unreachable: no directory answer within 500 ms/)
  })
})
