// Issue #8 fuzzing: every decoder and protocol handler gets malformed, truncated, oversized and
// reordered frames, mostly mutations of valid messages. The only acceptable outcomes are a decoded
// message or a ProtocolAbort / FrameTooLargeError: no other exception, no hang, bounded memory.
// CI runs FUZZ_RUNS (default 5000) per decoder; `npm run fuzz` sets 100000.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { FrameDecoder, FrameTooLargeError, encodeFrame } from '../../src/net/framing.ts'
import { CHUNK_ELEMS } from '../../src/protocol/masks.ts'
import { LABEL, MSG, decodeChunk, decodeJson, encodeChunk, encodeJson, shapes, signBody } from '../../src/protocol/masked-sum-messages.ts'
import { decodeAbort, encodeAbort } from '../../src/protocol/abort.ts'
import { ProtocolAbort } from '../../src/protocol/errors.ts'
import { runProvider } from '../../src/protocol/masked-sum-provider.ts'
import { memoryChannelPair } from '../../src/protocol/transport.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import { inspectTestCertificate, setup, testCertificate, type Setup } from '../helpers/parties.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 5000)
const HANDLER_RUNS = Math.max(30, Math.round(RUNS / 50))

/** Mutations of a valid frame: bit flips, byte overwrites, truncation, extension, splices. */
const mutated = (valid: Uint8Array[]): fc.Arbitrary<Uint8Array> => fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
    .map(([v, edits]) => { const b = Uint8Array.from(v); for (const [i, x] of edits) b[i % b.length] = x; return b }) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([v, n]) => v.subarray(0, n % (v.length + 1))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.uint8Array({ maxLength: 64 })).map(([v, x]) => Uint8Array.from([...v, ...x])) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.constantFrom(...valid), fc.nat(), fc.nat()).map(([a, b, i, j]) => Uint8Array.from([...a.subarray(0, i % (a.length + 1)), ...b.subarray(j % (b.length + 1))])) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) }
)

function onlyAborts(f: () => unknown): void {
  try {
    f()
  } catch (e) {
    if (!(e instanceof ProtocolAbort)) throw e
  }
}

let s: Setup
const valid: Uint8Array[] = []

describe('decoders', () => {
  it('setup: a corpus of valid messages', async () => {
    s = await setup(3, 100)
    const hex = toHex(s.params.session)
    const p = s.providers[0]!
    valid.push(
      encodeJson(MSG.start, { v: 2, type: 'start', session: hex }),
      encodeJson(MSG.xcheck, { v: 2, type: 'xcheck', session: hex, proposal: toHex(s.proposal), confirm: '11'.repeat(32) }),
      encodeJson(MSG.xcert, { v: 2, type: 'xcert', session: hex, certificate: testCertificate(s.buyer, s.params.session, s.proposal) }),
      encodeJson(MSG.done, signBody(p.signer, LABEL.done, { v: 2, type: 'done', session: hex, provider: p.peerId, length: 104, chunks: 1, hash: '22'.repeat(32) })),
      encodeJson(MSG.inclusion, signBody(s.buyer.signer, LABEL.inclusion, { v: 2, type: 'inclusion', session: hex, entries: [{ provider: p.peerId, length: 104, chunks: 1, hash: '22'.repeat(32), sig: '33'.repeat(64) }] })),
      encodeJson(MSG.reveal, signBody(p.signer, LABEL.reveal, { v: 2, type: 'reveal', session: hex, provider: p.peerId, inclusion: '44'.repeat(32), seed: '55'.repeat(32) })),
      encodeJson(MSG.receipt, signBody(s.buyer.signer, LABEL.receipt, { v: 2, type: 'receipt', session: hex, commitment: '66'.repeat(32), cells: 100 })),
      encodeChunk(0, 0, BigUint64Array.from({ length: 13 }, (_, i) => BigInt(i) * 0x0123456789abcdefn)),
      encodeAbort(p.signer, s.params.session, { reason: 'bad_vector', accused: s.buyer.peerId, detail: 'x', evidence: { a: [1, 2] } })
    )
  })

  it(`JSON and CHUNK decoders: ${RUNS} mutated frames, only ProtocolAbort`, () => {
    const decoders = [
      (f: Uint8Array) => decodeJson(f, MSG.start, 'x', shapes.start),
      (f: Uint8Array) => decodeJson(f, MSG.xcheck, 'x', shapes.xcheck),
      (f: Uint8Array) => decodeJson(f, MSG.xcert, 'x', shapes.xcert),
      (f: Uint8Array) => decodeJson(f, MSG.done, 'x', shapes.done),
      (f: Uint8Array) => decodeJson(f, MSG.inclusion, 'x', shapes.inclusion),
      (f: Uint8Array) => decodeJson(f, MSG.reveal, 'x', shapes.reveal),
      (f: Uint8Array) => decodeJson(f, MSG.receipt, 'x', shapes.receipt, ['r', 'result']),
      (f: Uint8Array) => decodeChunk(f, 'x')
    ]
    fc.assert(fc.property(mutated(valid), (f) => {
      for (const d of decoders) onlyAborts(() => d(f))
    }), { numRuns: RUNS })
  })

  it(`abort decoder: ${RUNS} mutated frames never throw, and a tampered abort is never "verified"`, () => {
    const abortFrame = valid.at(-1) as Uint8Array
    fc.assert(fc.property(mutated([abortFrame]), (f) => {
      const r = decodeAbort(f, s.providers[0]!.peerId)
      if (r.verified) expect(Buffer.from(f).equals(Buffer.from(abortFrame)) || JSON.stringify(JSON.parse(new TextDecoder().decode(f.subarray(1)))) === JSON.stringify(JSON.parse(new TextDecoder().decode(abortFrame.subarray(1))))).toBe(true)
    }), { numRuns: RUNS })
  })

  it(`frame decoder: ${RUNS} arbitrary chunkings and corrupt prefixes; frames survive, oversize refused, buffer bounded`, () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 10 }), fc.boolean(), (payloads, cuts, corrupt) => {
      const wire = Uint8Array.from(payloads.flatMap((p) => [...encodeFrame(p)]))
      if (corrupt && wire.length >= 4) wire.set([0xff, 0xff, 0xff, 0xff], 0)
      const d = new FrameDecoder(4096)
      const got: Uint8Array[] = []
      try {
        for (let o = 0, k = 0; o < wire.length; k++) {
          const n = cuts[k % cuts.length] as number
          got.push(...d.push(wire.subarray(o, o + n)))
          o += n
        }
      } catch (e) {
        expect(e).toBeInstanceOf(FrameTooLargeError)
        expect(corrupt).toBe(true)
        return
      }
      if (!corrupt) expect(got.map((g) => Buffer.from(g).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')))
    }), { numRuns: RUNS })
  })
})

describe('protocol handlers', () => {
  it(`a provider fed ${HANDLER_RUNS} mutated / reordered buyer message sequences aborts cleanly, never hangs`, async () => {
    const fresh = await setup(3, 100, { timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } })
    const hex = toHex(fresh.params.session)
    const seqValid = [
      encodeJson(MSG.start, { v: 2, type: 'start', session: hex }),
      encodeJson(MSG.inclusion, signBody(fresh.buyer.signer, LABEL.inclusion, { v: 2, type: 'inclusion', session: hex, entries: [] })),
      encodeJson(MSG.receipt, signBody(fresh.buyer.signer, LABEL.receipt, { v: 2, type: 'receipt', session: hex, commitment: '66'.repeat(32), cells: 100 }))
    ]
    const heap0 = process.memoryUsage().heapUsed
    await fc.assert(fc.asyncProperty(fc.array(mutated(seqValid), { minLength: 1, maxLength: 4 }), fc.boolean(), async (frames, shuffle) => {
      if (shuffle) frames.reverse()
      const me = fresh.providers[0]!
      const [toBuyer, buyerSide] = memoryChannelPair(fresh.buyer.peerId, me.peerId)
      // co-providers answer the cross-check correctly-shaped but are otherwise silent
      const peers = new Map(fresh.providers.slice(1).map((q) => {
        const [mine, theirs] = memoryChannelPair(q.peerId, me.peerId)
        void theirs.receive().catch(() => {})
        return [q.peerId, mine] as const
      }))
      const run = runProvider({
        signer: me.signer, params: fresh.params, proposalDigest: fresh.proposal,
        certificate: testCertificate(fresh.buyer, fresh.params.session, fresh.proposal), inspectCertificate: inspectTestCertificate,
        ephemeralPrivateKey: Uint8Array.from(fresh.ephemeral.get(me.peerId) as Uint8Array),
        vector: new BigUint64Array(100), buyer: toBuyer, peers
      })
      for (const f of frames) await buyerSide.send(f).catch(() => {})
      const t0 = Date.now()
      const r = await run.then(() => null, (e: unknown) => e)
      expect(r).toBeInstanceOf(ProtocolAbort)
      expect(Date.now() - t0).toBeLessThan(5000)
    }), { numRuns: HANDLER_RUNS })
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(200 * 1024 * 1024)
  }, 600_000)

  it('an oversized CHUNK count is refused before any allocation', () => {
    const f = encodeChunk(0, 0, new BigUint64Array(1))
    new DataView(f.buffer).setUint32(12, CHUNK_ELEMS * 1000, true)
    expect(() => decodeChunk(f, 'x')).toThrow(ProtocolAbort)
  })
})

describe('negotiation handler', () => {
  it(`a provider fed ${HANDLER_RUNS * 5} mutated proposals answers or aborts cleanly, never hangs`, async () => {
    const { createProposal, respondToProposal } = await import('../../src/protocol/negotiation.ts')
    const { validateQuery } = await import('../../src/query/validate.ts')
    const { comparePeers } = await import('../../src/crypto/peer.ts')
    const f = await setup(3, 24)
    const query = validateQuery({
      version: 1, id: 'fz', title: 'fuzz', dataset: 'd', timezone: 'UTC', filter: { op: 'cmp', cmp: '>', ref: { column: 'x' }, value: 1 },
      group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 't' } }], aggregates: [{ name: 'n', kind: 'count' }],
      max_rows_per_provider: 100,
      participants: { buyer: f.buyer.peerId, providers: f.providers.map((p) => p.peerId).sort(comparePeers) },
      min_providers: 3, output: [f.buyer.peerId], timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 }
    })
    const p = createProposal(f.buyer.signer, query, { now: Date.now() })
    const json = new TextEncoder().encode(JSON.stringify({ proposal: p.proposal, sig: p.sig }))
    const frame = Uint8Array.from([0x01, ...json])
    const me = f.providers[0]!
    await fc.assert(fc.asyncProperty(mutated([frame]), async (m) => {
      const [buyerSide, mine] = memoryChannelPair(me.peerId, f.buyer.peerId)
      await buyerSide.send(m)
      const nonces = new Set<string>()
      const r = await respondToProposal({
        signer: me.signer, channel: mine, nonces: { has: (n) => nonces.has(n), add: (n) => { nonces.add(n) } },
        deps: { checkQuery: (q) => validateQuery(q), now: () => Date.now() },
        decide: async () => ({ accept: false, reasons: [{ code: 'fuzz', message: 'no' }] })
      }).then((x) => x, (e: unknown) => e)
      if (r instanceof Error) expect(r).toBeInstanceOf(ProtocolAbort)
      else expect((r as { kind: string }).kind).toBe('rejected')
    }), { numRuns: HANDLER_RUNS * 5 })
  }, 600_000)
})
