// One benchmark party as its own OS process, driven by bench/run.ts over IPC. It runs the real
// masked-sum runners over real libp2p (TCP + Noise + yamux) streams, and — bench code only, no
// production path does this — a plaintext baseline that sends the unmasked vector over the same
// connections with the same framing, chunking and backpressure, so the ratio measures masking alone.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createAgentNode, handleProtocol, openChannel, type AgentNode } from '../src/net/node.ts'
import { channelFromStream } from '../src/net/framing.ts'
import { signerFromSeed } from '../src/crypto/sign.ts'
import { ephemeralKeyPair } from '../src/crypto/kdf.ts'
import { comparePeers } from '../src/crypto/peer.ts'
import { fromHex, toHex } from '../src/crypto/bytes.ts'
import { runProvider } from '../src/protocol/masked-sum-provider.ts'
import { runBuyer } from '../src/protocol/masked-sum-buyer.ts'
import { CHUNK_ELEMS, accumulate } from '../src/protocol/masks.ts'
import { decodeChunk, encodeChunk } from '../src/protocol/masked-sum-messages.ts'
import type { SessionParams } from '../src/protocol/session.ts'
import type { Channel } from '../src/protocol/transport.ts'
import type { ProtocolEvent } from '../src/protocol/events.ts'

const SECURE = '/mpc-agent-bench/secure/1.0.0'
const PLAIN = '/mpc-agent-bench/plain/1.0.0'

type Msg =
  | { cmd: 'init'; key?: string }
  | { cmd: 'connect'; peers: Array<{ id: string; addr: string }> }
  | { cmd: 'ephemeral'; run: number }
  | { cmd: 'run'; run: number; mode: 'secure' | 'plain'; params: WireParams; providers: string[]; buyer: string }
  | { cmd: 'exit' }

interface WireParams {
  session: string
  length: number
  providers: string[]
  buyer: string
  ephemeral: Record<string, string>
}

let node: AgentNode
let self = ''
let signer: ReturnType<typeof signerFromSeed>
const addrs = new Map<string, string>()
const eph = new Map<number, Uint8Array>()
// inbound streams by run and remote, for the runner to pick up
const inboundChannels = new Map<string, Channel[]>()
const waiters = new Map<string, Array<(c: Channel) => void>>()

function deliver(key: string, ch: Channel): void {
  const w = waiters.get(key)?.shift()
  if (w) return w(ch)
  const list = inboundChannels.get(key) ?? []
  list.push(ch)
  inboundChannels.set(key, list)
}

function take(key: string): Promise<Channel> {
  const hit = inboundChannels.get(key)?.shift()
  if (hit) return Promise.resolve(hit)
  return new Promise((resolve) => {
    const list = waiters.get(key) ?? []
    list.push(resolve)
    waiters.set(key, list)
  })
}

function send(m: unknown): void {
  process.send?.(m)
}

function params(w: WireParams): SessionParams {
  return {
    session: fromHex(w.session, 32),
    buyerSignature: new Uint8Array(64),
    buyer: w.buyer,
    providers: w.providers,
    ephemeralKeys: new Map(Object.entries(w.ephemeral).map(([k, v]) => [k, fromHex(v, 32)])),
    length: w.length,
    bounds: [],
    signed: [],
    outputProviders: [],
    timeouts: { negotiate_s: 30, compute_s: 120, confirm_s: 30 },
    deadline: Date.now() + 3_600_000
  }
}

/** The provider's input: a deterministic vector (the same for both modes). */
function vectorFor(length: number, seed: number): BigUint64Array {
  const v = new BigUint64Array(length)
  for (let i = 0; i < length; i++) v[i] = BigInt((i * 2654435761 + seed) % 1000)
  return v
}

async function handleRun(m: Extract<Msg, { cmd: 'run' }>): Promise<unknown> {
  const p = params(m.params)
  const isBuyer = self === m.buyer
  const cpu0 = process.cpuUsage()
  const counters = { sent: 0, received: 0 }
  const t0 = performance.now()
  const phases: Record<string, number> = {}
  const events = (e: ProtocolEvent): void => {
    if (e.type === 'phase') phases[`${e.phase}_${e.state}`] = Math.round((performance.now() - t0) * 10) / 10
  }
  let peakAB = process.memoryUsage().arrayBuffers
  const sampler = setInterval(() => { peakAB = Math.max(peakAB, process.memoryUsage().arrayBuffers) }, 5)
  try {
    if (isBuyer) {
      // stream per provider, opened by the buyer; first frame names the run
      const chans = new Map<string, Channel>()
      await Promise.all(m.providers.map(async (prov) => {
        const ch = await openChannel(node, addrs.get(prov) as string, m.mode === 'secure' ? SECURE : PLAIN, { counters })
        await ch.send(new TextEncoder().encode(JSON.stringify({ run: m.run, role: 'buyer' })))
        chans.set(prov, ch)
      }))
      if (m.mode === 'secure') {
        phases.streams_open = Math.round((performance.now() - t0) * 10) / 10
        const res = await runBuyer({ signer, params: p, channels: chans, events })
        res.total.fill(0n)
      } else {
        const sum = new BigUint64Array(p.length)
        await Promise.all([...chans.values()].map(async (ch) => {
          let off = 0
          while (off < p.length) {
            const c = decodeChunk(await ch.receive(), ch.remote)
            accumulate(sum, c.offset, c.values)
            off += c.values.length
          }
          await ch.close()
        }))
      }
    } else {
      // as in serve: co-provider streams are opened while waiting for the buyer's START stream
      const buyerP = take(`${m.run}/${m.buyer}`)
      const vector = vectorFor(p.length, m.providers.indexOf(self))
      if (m.mode === 'secure') {
        const peers = new Map<string, Channel>()
        await Promise.all(m.providers.filter((q) => q !== self).map(async (q) => {
          if (comparePeers(self, q) < 0) {
            const ch = await openChannel(node, addrs.get(q) as string, SECURE, { counters })
            await ch.send(new TextEncoder().encode(JSON.stringify({ run: m.run, role: 'provider' })))
            peers.set(q, ch)
          } else peers.set(q, await take(`${m.run}/${q}`))
        }))
        const buyerCh = await buyerP
        await runProvider({
          signer, params: p, proposalDigest: new Uint8Array(32), certificate: null, inspectCertificate: () => null,
          ephemeralPrivateKey: eph.get(m.run) as Uint8Array, vector, buyer: buyerCh, peers, events
        })
      } else {
        const buyerCh = await buyerP
        for (let off = 0, i = 0; off < p.length; off += CHUNK_ELEMS, i++) await buyerCh.send(encodeChunk(i, off, vector.subarray(off, off + CHUNK_ELEMS)))
        await buyerCh.receive().catch(() => {}) // wait for the buyer's close
      }
    }
  } finally {
    clearInterval(sampler)
  }
  const cpu = process.cpuUsage(cpu0)
  return { phases, wall_ms: performance.now() - t0, cpu_s: (cpu.user + cpu.system) / 1e6, bytes_sent: counters.sent, bytes_received: counters.received, peak_array_buffers: peakAB, rss: process.memoryUsage().rss }
}

async function onMessage(m: Msg): Promise<void> {
  switch (m.cmd) {
    case 'init': {
      const key = m.key ? privateKeyFromProtobuf(fromHex(m.key)) : await generateKeyPair('Ed25519')
      self = peerIdFromPrivateKey(key).toString()
      signer = signerFromSeed(self, key.raw.subarray(0, 32))
      const allow = new Set<string>()
      node = await createAgentNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], allow })
      await node.start()
      ;(globalThis as { allow?: Set<string> }).allow = allow
      for (const proto of [SECURE, PLAIN]) {
        await handleProtocol(node, proto, async (stream, remote) => {
          const ch = channelFromStream(stream, remote)
          const hello = JSON.parse(new TextDecoder().decode(await ch.receive())) as { run: number }
          deliver(`${hello.run}/${remote}`, ch)
        })
      }
      send({ ok: 'init', id: self, addr: node.getMultiaddrs()[0]?.toString(), key: toHex(privateKeyToProtobuf(key)) })
      return
    }
    case 'connect': {
      const allow = (globalThis as { allow?: Set<string> }).allow as Set<string>
      for (const p of m.peers) {
        allow.add(p.id)
        addrs.set(p.id, p.addr)
      }
      send({ ok: 'connect' })
      return
    }
    case 'ephemeral': {
      const kp = ephemeralKeyPair()
      eph.set(m.run, kp.privateKey)
      send({ ok: 'ephemeral', pub: toHex(kp.publicKey) })
      return
    }
    case 'run': {
      try {
        send({ ok: 'run', ...(await handleRun(m) as object) })
      } catch (e) {
        send({ ok: 'run', error: (e as Error).message })
      }
      return
    }
    case 'exit':
      await node?.stop()
      process.exit(0)
  }
}

process.on('message', (m: Msg) => {
  void onMessage(m)
})
send({ ok: 'boot' })
