// coalesceWrites: the buffers a connection is handed within one event-loop turn leave in one writev,
// intact and in order; connections that are not TCP sockets are left as they are.
import { describe, it, expect, afterEach } from 'vitest'
import { createServer, connect, type Socket, type Server } from 'node:net'
import { coalesceWrites, isCoalesced } from '../../src/net/coalesce.ts'

interface Conn { socket: Socket; sendData(data: Uint8Array[]): { sentBytes: number; canSendMore: boolean } }

/** As @libp2p/tcp's TCPSocketMultiaddrConnection.sendData: one socket.write per buffer. */
const tcpLike = (socket: Socket): Conn => ({
  socket,
  sendData(data) {
    let sentBytes = 0
    let canSendMore = true
    for (const b of data) {
      sentBytes += b.length
      canSendMore = socket.write(b)
    }
    return { sentBytes, canSendMore }
  }
})

let server: Server | null = null
let client: Socket | null = null
afterEach(() => {
  client?.destroy()
  server?.close()
})

async function pair(): Promise<{ client: Socket; received: Promise<Buffer>; writes: { write: number; writev: number } }> {
  let resolveRx!: (b: Buffer) => void
  const received = new Promise<Buffer>((r) => (resolveRx = r))
  server = createServer((s) => {
    const parts: Buffer[] = []
    s.on('data', (d: Buffer) => parts.push(d))
    s.on('end', () => resolveRx(Buffer.concat(parts)))
  })
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  client = connect(port, '127.0.0.1')
  await new Promise<void>((r) => client?.once('connect', r))
  const writes = { write: 0, writev: 0 }
  const c = client as unknown as { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown }
  const w = c._write.bind(client)
  const wv = c._writev.bind(client)
  c._write = (...a) => (writes.write++, w(...a))
  c._writev = (...a) => (writes.writev++, wv(...a))
  return { client, received, writes }
}

const bufs = (n: number, tag: number): Uint8Array[] => Array.from({ length: n }, (_, i) => new Uint8Array(100 + i).fill(tag + i))

describe('coalesceWrites', () => {
  it('two messages of three buffers each in one turn: one writev, the bytes intact and in order', async () => {
    const { client: sock, received, writes } = await pair()
    const conn = tcpLike(sock)
    coalesceWrites(conn)
    coalesceWrites(conn) // idempotent
    const a = bufs(3, 1)
    const b = bufs(3, 50)
    expect(conn.sendData(a)).toEqual({ sentBytes: 303, canSendMore: true })
    conn.sendData(b)
    expect(sock.writableLength).toBe(606) // held for this turn only
    await new Promise((r) => process.nextTick(r))
    expect(writes).toEqual({ write: 0, writev: 1 })
    sock.end()
    expect(new Uint8Array(await received)).toEqual(new Uint8Array(Buffer.concat([...a, ...b])))
  })

  it('without it (the control): one write per buffer', async () => {
    const { client: sock, received, writes } = await pair()
    const conn = tcpLike(sock)
    conn.sendData(bufs(3, 1))
    await new Promise((r) => process.nextTick(r))
    expect(writes.write).toBe(3)
    sock.end()
    await received
  })

  it('writes of later turns are not held back', async () => {
    const { client: sock, received, writes } = await pair()
    const conn = tcpLike(sock)
    coalesceWrites(conn)
    conn.sendData(bufs(2, 1))
    await new Promise((r) => setImmediate(r))
    expect(sock.writableLength).toBe(0)
    conn.sendData(bufs(2, 9))
    await new Promise((r) => setImmediate(r))
    expect(sock.writableLength).toBe(0)
    expect(writes.writev).toBe(2)
    sock.end()
    expect((await received).length).toBe(402)
  })

  it('leaves anything that is not a TCP socket connection alone', () => {
    const sendData = (): void => {}
    const relayed = { sendData }
    coalesceWrites(relayed)
    expect(relayed.sendData).toBe(sendData)
    coalesceWrites(null)
    coalesceWrites({ socket: {}, sendData })
  })
})

describe('in an agent node', () => {
  it('both ends of a real connection (TCP + Noise + yamux) write coalesced, and messages arrive intact', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const { createAgentNode, handleProtocol, openChannel } = await import('../../src/net/node.ts')
    const { channelFromStream } = await import('../../src/net/framing.ts')
    const mk = async () => {
      const key = await generateKeyPair('Ed25519')
      const allow = new Set<string>()
      const node = await createAgentNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], allow })
      await node.start()
      return { node, allow, id: peerIdFromPrivateKey(key).toString() }
    }
    const a = await mk()
    const b = await mk()
    a.allow.add(b.id)
    b.allow.add(a.id)
    const got = Promise.withResolvers<import('../../src/protocol/transport.ts').Channel>()
    await handleProtocol(b.node, '/test/coalesce/1', (stream, remote) => { got.resolve(channelFromStream(stream, remote)) })
    try {
      const tx = await openChannel(a.node, `${b.node.getMultiaddrs()[0]}`, '/test/coalesce/1')
      const msgs = Array.from({ length: 50 }, (_, i) => new Uint8Array(1 + i * 997).fill(i))
      for (const m of msgs) void tx.send(m) // many in one turn
      const rx = await got.promise
      for (const m of msgs) expect(await rx.receive()).toEqual(m)
      const maConn = (n: typeof a.node): unknown => (n.getConnections()[0] as unknown as { maConn: unknown }).maConn
      expect(isCoalesced(maConn(a.node)), 'dialer').toBe(true)
      expect(isCoalesced(maConn(b.node)), 'listener').toBe(true)
      await tx.close()
    } finally {
      await Promise.all([a.node.stop(), b.node.stop()])
    }
  }, 30_000)
})
