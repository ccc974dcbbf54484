// The frame decoder against the way libp2p hands us bytes: Uint8ArrayLists of Noise-message-sized
// pieces, frames split anywhere. Each frame must come out once, whole, in its own aligned buffer.
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, FrameTooLargeError, encodeFrame } from '../../src/net/framing.ts'
import { allocChunk, decodeChunk } from '../../src/protocol/masked-sum-messages.ts'

describe('FrameDecoder', () => {
  it('decodes frames split across buffer lists at every boundary, each into its own aligned buffer', () => {
    const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(0), Uint8Array.from({ length: 70_000 }, (_, i) => i & 0xff), new Uint8Array([9])]
    const wire = Uint8Array.from(payloads.flatMap((p) => [...encodeFrame(p)]))
    for (const piece of [3, 4, 5, 7, 1000, 65_535, wire.length]) {
      const d = new FrameDecoder()
      const got: Uint8Array[] = []
      for (let o = 0; o < wire.length; o += 2 * piece) {
        // two pieces per list, as a Noise read yields them
        const list = new Uint8ArrayList(wire.subarray(o, Math.min(wire.length, o + piece)), wire.subarray(Math.min(wire.length, o + piece), Math.min(wire.length, o + 2 * piece)))
        got.push(...d.push(list))
      }
      expect(got.map((g) => [...g]), `pieces of ${piece}`).toEqual(payloads.map((p) => [...p]))
      for (const g of got) expect(g.byteOffset % 8).toBe(0)
    }
  })

  it('a CHUNK decoded from a split frame is a view, not a copy, with its values intact', () => {
    const { frame, values } = allocChunk(0, 0, 3)
    values.set([1n, 2n ** 63n, 2n ** 64n - 1n])
    const wire = encodeFrame(frame)
    const d = new FrameDecoder()
    const out = [...d.push(wire.subarray(0, 11)), ...d.push(wire.subarray(11))]
    expect(out).toHaveLength(1)
    const c = decodeChunk(out[0] as Uint8Array, 'p')
    expect(c.values.buffer).toBe((out[0] as Uint8Array).buffer)
    expect([...c.values]).toEqual([1n, 2n ** 63n, 2n ** 64n - 1n])
  })

  it('refuses an oversize frame from its header alone', () => {
    const d = new FrameDecoder(100)
    expect(() => d.push(new Uint8Array([0, 0, 0, 101]))).toThrow(FrameTooLargeError)
  })
})

describe('channelFromStream over real libp2p (TCP + Noise + yamux)', () => {
  it('backpressure: a receiver that stops reading blocks the sender (≤ ~20 MiB outstanding), then gets every frame in order', async () => {
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
    await handleProtocol(b.node, '/test/bp/1', (stream, remote) => { got.resolve(channelFromStream(stream, remote)) })
    try {
      const tx = await openChannel(a.node, `${b.node.getMultiaddrs()[0]}`, '/test/bp/1')
      const FRAMES = 80 // 40 MiB in 512 KiB frames: more than the sender may hold unsent (SEND_HIGH_WATER)
      const frame = (i: number): Uint8Array => new Uint8Array(512 * 1024).fill(i)
      let sent = 0
      const sending = (async () => {
        for (let i = 0; i < FRAMES; i++) {
          await tx.send(frame(i))
          sent++
        }
        await tx.close()
      })()
      const rx = await got.promise
      await new Promise((r) => setTimeout(r, 1500)) // the receiver reads nothing meanwhile
      // unsent at the sender ≤ 16 MiB, in flight ≤ the 1 MiB window, queued at the receiver ≤ 1 MiB + a frame
      expect(sent, 'the sender is held back while nobody reads').toBeLessThan(44)
      for (let i = 0; i < FRAMES; i++) {
        const f = await rx.receive()
        expect(f.length).toBe(512 * 1024)
        expect(f[0]).toBe(i & 0xff)
        expect(f[f.length - 1]).toBe(i & 0xff)
      }
      await sending
      expect(sent).toBe(FRAMES)
    } finally {
      await Promise.all([a.node.stop(), b.node.stop()])
    }
  }, 30_000)
})
