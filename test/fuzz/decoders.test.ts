// Issue #8 fuzzing: every decoder and protocol handler gets malformed, truncated, oversized and
// reordered frames, mostly mutations of valid messages. The only acceptable outcomes are a decoded
// message or a ProtocolAbort / FrameTooLargeError: no other exception, no hang, bounded memory.
// CI runs FUZZ_RUNS (default 5000) per decoder; `npm run fuzz` sets 100000.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { FrameDecoder, FrameTooLargeError, encodeFrame } from '../../src/net/framing.ts'
import { CHUNK_ELEMS } from '../../src/protocol/masks.ts'
import { LABEL, MSG, decodeChunk, decodeJson, encodeChunk, encodeJson, shapes, signBody } from '../../src/protocol/masked-sum-messages.ts'
import { decodeAbort, encodeAbort, heardAbort } from '../../src/protocol/abort.ts'
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
      encodeJson(MSG.start, signBody(s.buyer.signer, LABEL.start, { v: 4, type: 'start', session: hex, from: s.buyer.peerId, to: p.peerId })),
      encodeJson(MSG.xcheck, signBody(p.signer, LABEL.xcheck, { v: 4, type: 'xcheck', session: hex, proposal: toHex(s.proposal), confirm: '11'.repeat(32), from: p.peerId, to: s.providers[1]!.peerId })),
      encodeJson(MSG.xcert, signBody(p.signer, LABEL.xcert, { v: 4, type: 'xcert', session: hex, xcheck: '77'.repeat(32), certificate: testCertificate(s.buyer, s.params.session, s.proposal), from: p.peerId, to: s.providers[1]!.peerId })),
      encodeJson(MSG.done, signBody(p.signer, LABEL.done, { v: 4, type: 'done', session: hex, provider: p.peerId, to: s.buyer.peerId, length: 104, chunks: 1, hash: '22'.repeat(32) })),
      encodeJson(MSG.inclusion, signBody(s.buyer.signer, LABEL.inclusion, { v: 4, type: 'inclusion', session: hex, from: s.buyer.peerId, to: p.peerId, entries: [{ provider: p.peerId, length: 104, chunks: 1, hash: '22'.repeat(32), sig: '33'.repeat(64) }] })),
      encodeJson(MSG.reveal, signBody(p.signer, LABEL.reveal, { v: 4, type: 'reveal', session: hex, provider: p.peerId, to: s.buyer.peerId, inclusion: '44'.repeat(32), seed: '55'.repeat(32) })),
      encodeJson(MSG.receipt, signBody(s.buyer.signer, LABEL.receipt, { v: 4, type: 'receipt', session: hex, from: s.buyer.peerId, to: p.peerId, commitment: '66'.repeat(32), cells: 100 })),
      encodeChunk(0, 0, BigUint64Array.from({ length: 13 }, (_, i) => BigInt(i) * 0x0123456789abcdefn)),
      encodeAbort(p.signer, s.params.session, s.buyer.peerId, { reason: 'bad_vector', accused: s.buyer.peerId, detail: 'x', evidence: { a: [1, 2] } })
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
      const r = decodeAbort(f, s.providers[0]!.peerId, { self: s.buyer.peerId, session: s.params.session })
      if (r.ok) expect(Buffer.from(f).equals(Buffer.from(abortFrame)) || JSON.stringify(JSON.parse(new TextDecoder().decode(f.subarray(1)))) === JSON.stringify(JSON.parse(new TextDecoder().decode(abortFrame.subarray(1))))).toBe(true)
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
      encodeJson(MSG.start, signBody(fresh.buyer.signer, LABEL.start, { v: 4, type: 'start', session: hex, from: fresh.buyer.peerId, to: fresh.providers[0]!.peerId })),
      encodeJson(MSG.inclusion, signBody(fresh.buyer.signer, LABEL.inclusion, { v: 4, type: 'inclusion', session: hex, from: fresh.buyer.peerId, to: fresh.providers[0]!.peerId, entries: [] })),
      encodeJson(MSG.receipt, signBody(fresh.buyer.signer, LABEL.receipt, { v: 4, type: 'receipt', session: hex, from: fresh.buyer.peerId, to: fresh.providers[0]!.peerId, commitment: '66'.repeat(32), cells: 100 }))
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

// ---- issue 16: hostile shapes (deep nesting, wrong-typed fields, null bodies, huge arrays) ------------
// Every decoder, and every path that stores or logs what a decoder returned (the audit log, agent.log,
// the --json event line, `audit list`), gets each shape. Acceptable: a decoded value or a ProtocolAbort
// from decoders; nothing at all thrown by the storing and logging paths; never a RangeError.

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const nestedArrays = (n: number): string => '['.repeat(n) + ']'.repeat(n)
const nestedObjects = (n: number): string => '{"a":'.repeat(n) + 'null' + '}'.repeat(n)
const bigArray = (n: number): string => '[' + new Array(n).fill('0').join(',') + ']'
/** Values put in place of each field of a valid message. */
const WRONG_VALUES = [
  'null', 'true', '0', '-1', '1e308', '0.5', '"x"', '""', '[]', '{}', '{"toString":1}', '{"valueOf":{},"toString":{}}',
  '{"__proto__":{"polluted":1}}', JSON.stringify('x'.repeat(5000)), JSON.stringify('\u001b[2J\nforged line'),
  bigArray(20_000), nestedArrays(200), nestedObjects(200), '[{"type":{"toString":1}}]', '[{"type":"\\u001b[2J"}]', '{"\\u001b[2J":1}'
]
/** Whole message bodies. */
const HOSTILE_BODIES = ['', 'null', '1', '"abort"', '[]', '{}', nestedArrays(400_000), nestedObjects(100_000), bigArray(300_000), '{"a":' + nestedArrays(95) + '}']

/** The JSON text of `o` with field `k`'s value replaced by the raw JSON `v`. */
function withField(o: Record<string, unknown>, k: string, v: string): string {
  return '{' + Object.entries(o).map(([kk, vv]) => `${JSON.stringify(kk)}:${kk === k ? v : JSON.stringify(vv)}`).join(',') + '}'
}

describe('hostile shapes (issue 16)', () => {
  it('every decoder and every path that stores or logs a decoded message survives every shape', async () => {
    const { decodeMessage, verifyProposal, verifyAnswer, verifyCertificate, createProposal, NEG } = await import('../../src/protocol/negotiation.ts')
    const { validateQuery } = await import('../../src/query/validate.ts')
    const { comparePeers } = await import('../../src/crypto/peer.ts')
    const { routeHead } = await import('../../src/agent/sessions.ts')
    const { AuditLog, verifyAudit } = await import('../../src/agent/audit.ts')
    const { JsonLog } = await import('../../src/agent/log.ts')
    const { homePaths } = await import('../../src/agent/home.ts')
    const { summarize } = await import('../../src/cli/commands/audit.ts')
    const { summarizeEvidence } = await import('../../src/ui/state.ts')
    const { parsePeer } = await import('../../src/crypto/peer.ts')
    const { mkdtempSync, readFileSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')

    const f = await setup(3, 24)
    const me = f.providers[0]!
    const hex = toHex(f.params.session)
    const query = validateQuery({
      version: 1, id: 'hs', title: 'hostile', dataset: 'd', timezone: 'UTC', filter: null,
      group_by: [{ name: 'h', domain: { kind: 'hour_of_day', column: 't' } }], aggregates: [{ name: 'n', kind: 'count' }],
      max_rows_per_provider: 100,
      participants: { buyer: f.buyer.peerId, providers: f.providers.map((p) => p.peerId).sort(comparePeers) },
      min_providers: 3, output: [f.buyer.peerId], timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 }
    })
    const p = createProposal(f.buyer.signer, query, { now: Date.now() })
    const accept = { v: 1, type: 'accept', proposal: toHex(p.digest), provider: me.peerId, role: 'provider', decision: 'accept', ephemeral: '77'.repeat(32), sig: '88'.repeat(64) }
    const abortBody = JSON.parse(new TextDecoder().decode(encodeAbort(me.signer, f.params.session, me.peerId, { reason: 'bad_vector', accused: f.buyer.peerId, detail: 'x', evidence: { a: [1] } }).subarray(1))) as Record<string, unknown>
    // [type byte, a valid body of that type]
    const corpus: Array<[number, Record<string, unknown>]> = [
      [NEG.proposal, { proposal: p.proposal, sig: p.sig }],
      [NEG.accept, accept],
      [NEG.reject, { ...accept, type: 'reject', decision: 'reject', ephemeral: undefined, reasons: [{ code: 'c', message: 'm' }] }],
      [NEG.certificate, { body: { proposal: { proposal: p.proposal, sig: p.sig }, acceptances: [accept] }, buyer_sig: '99'.repeat(64) }],
      [MSG.start, { v: 2, type: 'start', session: hex }],
      [MSG.xcheck, { v: 2, type: 'xcheck', session: hex, proposal: toHex(f.proposal), confirm: '11'.repeat(32) }],
      [MSG.xcert, { v: 2, type: 'xcert', session: hex, certificate: { a: 1 } }],
      [MSG.done, { v: 2, type: 'done', session: hex, provider: me.peerId, length: 28, chunks: 1, hash: '22'.repeat(32), sig: '33'.repeat(64) }],
      [MSG.inclusion, { v: 2, type: 'inclusion', session: hex, entries: [], sig: '33'.repeat(64) }],
      [MSG.reveal, { v: 2, type: 'reveal', session: hex, provider: me.peerId, inclusion: '44'.repeat(32), seed: '55'.repeat(32), sig: '33'.repeat(64) }],
      [MSG.receipt, { v: 2, type: 'receipt', session: hex, commitment: '66'.repeat(32), cells: 24, sig: '33'.repeat(64) }],
      [MSG.abort, abortBody]
    ]
    const frames: Uint8Array[] = []
    for (const [type, body] of corpus) {
      for (const k of Object.keys(body)) for (const v of WRONG_VALUES) frames.push(Uint8Array.from([type, ...enc(withField(body, k, v))]))
      for (const b of HOSTILE_BODIES) frames.push(Uint8Array.from([type, ...enc(b)]))
    }
    // the issue's own inputs, verbatim
    frames.push(Uint8Array.from([MSG.abort, ...enc('null')]))
    frames.push(Uint8Array.from([MSG.abort, ...enc(withField(abortBody, 'detail', '{"toString":1}'))]))
    frames.push(Uint8Array.from([MSG.abort, ...enc(withField(abortBody, 'evidence', nestedArrays(400_000)))]))

    const home = homePaths(mkdtempSync(join(tmpdir(), 'mpc-hostile-')))
    const audit = AuditLog.open(home, me.signer)
    const agentLog = new JsonLog(home.logs)
    const deps = { checkQuery: (q: unknown) => validateQuery(q), now: () => Date.now() }
    const noControl = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
    /** What serve does with a run's failure: audit, agent.log, the --json line, and `audit list`. */
    const storeAndLog = (info: unknown): void => {
      const entry = audit.append('abort', { session: hex, data: info })
      agentLog.write('warn', 'abort', { event: { v: 1, type: 'abort', session: hex, abort: info, exitCode: 4 } })
      JSON.stringify({ v: 1, type: 'abort', session: hex, abort: info, exitCode: 4 })
      const line = summarize(entry)
      expect(typeof line).toBe('string')
      // the ink run view's one-line summary of the evidence
      expect(summarizeEvidence((info as { evidence?: unknown }).evidence)).not.toMatch(noControl)
    }
    const viaDecoder = (d: () => unknown, store = false): void => {
      try {
        d()
      } catch (e) {
        if (!(e instanceof ProtocolAbort)) throw e
        // what carries peer data into storage: a relayed ABORT, or evidence (a certificate as received)
        if (store && (e.info.reason === 'peer_abort' || e.info.evidence !== undefined)) storeAndLog(e.info)
      }
    }
    let n = 0
    for (const fr of frames) {
      n++
      // masked-sum decoders
      for (const [name, shape] of Object.entries(shapes)) {
        const type = MSG[name as keyof typeof MSG]
        viaDecoder(() => decodeJson(fr, type, me.peerId, shape, name === 'receipt' ? ['r', 'result'] : []))
      }
      // negotiation decoder, then the checks that read the decoded body
      viaDecoder(() => {
        const { type, body } = decodeMessage(fr, [NEG.proposal, NEG.accept, NEG.reject, NEG.certificate], f.buyer.peerId, 'buyer', { self: me.peerId, session: p.digest })
        if (type === NEG.proposal) verifyProposal(body, f.buyer.peerId, deps)
        else if (type === NEG.certificate) verifyCertificate(body, deps, { proposal: p.digest, self: me.peerId, ephemeral: new Uint8Array(32), buyer: f.buyer.peerId })
        else verifyAnswer(type, body, me.peerId, p.digest)
      }, true)
      // ABORT: never throws, and what it returns is bounded and printable
      const a = heardAbort(fr, me.peerId, { self: me.peerId, session: f.params.session, buyer: f.buyer.peerId })
      expect(typeof a.reason).toBe('string')
      expect(typeof a.detail).toBe('string')
      expect(a.detail.length).toBeLessThanOrEqual(500)
      expect(a.detail).not.toMatch(noControl)
      expect(a.accused === null || typeof a.accused === 'string').toBe(true)
      if (fr[0] === MSG.abort) storeAndLog(a) // receivers decode (and then store) only frames typed 0x7f
      // the stream router's first look
      const h = routeHead(fr)
      if (h) expect(h.session).toMatch(/^[0-9a-f]{64}$/)
    }
    expect(n).toBeGreaterThan(800)
    // the deep evidence reached no entry: nothing stored is deeper than the wire bound
    expect(readFileSync(home.audit, 'utf8')).not.toContain('['.repeat(200))
    expect(verifyAudit(home, parsePeer(me.peerId).publicKey).ok).toBe(true)
  }, 300_000)

  it('the local recursive walks are bounded: canonical JSON and the audit redaction of a 400 000-deep value', async () => {
    const { canonicalize, CanonicalizationError } = await import('../../src/crypto/canonical.ts')
    const { redact, AUDIT_MAX_DEPTH } = await import('../../src/agent/audit.ts')
    let deep: unknown = null
    for (let i = 0; i < 400_000; i++) deep = [deep]
    expect(() => canonicalize(deep)).toThrow(CanonicalizationError)
    const r = redact({ evidence: deep })
    let d = 0
    for (let x: unknown = r; Array.isArray(x) || (typeof x === 'object' && x !== null && 'evidence' in x); d++) {
      x = Array.isArray(x) ? x[0] : (x as { evidence: unknown }).evidence
    }
    expect(d).toBeLessThanOrEqual(AUDIT_MAX_DEPTH + 1)
    expect(() => canonicalize(r)).not.toThrow()
  })

  it('a run\'s background reader survives hostile ABORT frames (0x7f null, detail {"toString":1}, 400 000-deep evidence)', async () => {
    const fresh = await setup(3, 24, { timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } })
    const me = fresh.providers[0]!
    const base = JSON.parse(new TextDecoder().decode(encodeAbort(fresh.buyer.signer, fresh.params.session, me.peerId, { reason: 'bad_vector', accused: me.peerId, detail: 'x' }).subarray(1))) as Record<string, unknown>
    const bodies = ['null', '[]', '1', withField(base, 'detail', '{"toString":1}'), withField(base, 'evidence', nestedArrays(400_000)), withField(base, 'reason', '{}')]
    for (const body of bodies) {
      const [toBuyer, buyerSide] = memoryChannelPair(me.peerId, fresh.buyer.peerId) // toBuyer.remote = the buyer
      const peers = new Map(fresh.providers.slice(1).map((q) => [q.peerId, memoryChannelPair(me.peerId, q.peerId)[0]] as const))
      const run = runProvider({
        signer: me.signer, params: fresh.params, proposalDigest: fresh.proposal,
        certificate: testCertificate(fresh.buyer, fresh.params.session, fresh.proposal), inspectCertificate: inspectTestCertificate,
        ephemeralPrivateKey: Uint8Array.from(fresh.ephemeral.get(me.peerId) as Uint8Array),
        vector: new BigUint64Array(24), buyer: toBuyer, peers
      })
      await buyerSide.send(Uint8Array.from([MSG.abort, ...enc(body)]))
      const r = await run.then(() => null, (e: unknown) => e)
      expect(r, body.slice(0, 40)).toBeInstanceOf(ProtocolAbort)
      expect((r as ProtocolAbort).info.by, `${body.slice(0, 40)}: ${(r as Error).message}`).toBe(fresh.buyer.peerId)
    }
  }, 60_000)
})
