// Directory decoders and the entry check under mutated input (like test/fuzz/decoders.test.ts):
// the only acceptable outcomes are a decoded message or DirectoryProtocolError, a verified entry
// or EntryCheckError; and a mutated entry never verifies unless it still says exactly what was signed.
// CI runs FUZZ_RUNS (default 5000) per decoder; `npm run fuzz` sets 100000.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { makeParty } from '../helpers/parties.ts'
import { decodeRequest, decodeResponse, encodeMessage, DirectoryProtocolError } from '../../src/directory/messages.ts'
import { EntryCheckError, signPeerEntryV2, verifyPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'
import { utf8, fromUtf8 } from '../../src/crypto/bytes.ts'
import { decodeReachRequest, decodeReachResponse, dialBackPlan, encodeReach, ReachProtocolError } from '../../src/reach/protocol.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 5000)

const mutated = (valid: Uint8Array[]): fc.Arbitrary<Uint8Array> => fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
    .map(([v, edits]) => { const b = Uint8Array.from(v); for (const [i, x] of edits) b[i % b.length] = x; return b }) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([v, n]) => v.subarray(0, n % (v.length + 1))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.uint8Array({ maxLength: 64 })).map(([v, x]) => Uint8Array.from([...v, ...x])) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) }
)

describe('directory fuzz', () => {
  it(`request and response decoders: ${RUNS} mutated frames, only DirectoryProtocolError`, async () => {
    const p = await makeParty()
    const entry = signPeerEntryV2(p.signer, { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`], role: 'provider', seq: 9, exp: 2_000_000_000, datasets: ['trips'], policy: { approval: 'auto', min_providers: 3, max_cells: 10, dp_required: false } })
    const valid = [
      encodeMessage({ v: 1, type: 'publish', entry }),
      encodeMessage({ v: 1, type: 'list', after: p.peerId }),
      encodeMessage({ v: 1, type: 'entries', entries: [entry, entry], more: true }),
      encodeMessage({ v: 1, type: 'published', peerId: p.peerId, seq: 9, change: 'added' }),
      encodeMessage({ v: 1, type: 'error', code: 'stale', detail: 'x' })
    ]
    fc.assert(fc.property(mutated(valid), (f) => {
      for (const d of [decodeRequest, decodeResponse]) {
        try {
          d(f)
        } catch (e) {
          if (!(e instanceof DirectoryProtocolError)) throw e
        }
      }
    }), { numRuns: RUNS })
  })

  it(`reachability check (protocols/reach.md): ${RUNS} mutated frames, only ReachProtocolError; no decoded request makes the relay target anyone but the asker`, () => {
    const me = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
    const valid = [
      encodeReach({ v: 1, type: 'check', addrs: [`/ip4/10.0.0.5/tcp/41001/p2p/${me}`, '/ip4/203.0.113.7/tcp/41001', '/ip6/::1/tcp/9'] }),
      encodeReach({ v: 1, type: 'result', observed: '203.0.113.7', results: [{ addr: '/ip4/203.0.113.7/tcp/41001', result: 'reachable', detail: 'ok' }] }),
      encodeReach({ v: 1, type: 'error', detail: 'later' })
    ]
    fc.assert(fc.property(mutated(valid), (f) => {
      try {
        decodeReachResponse(f)
      } catch (e) {
        if (!(e instanceof ReachProtocolError)) throw e
      }
      let addrs: string[]
      try {
        addrs = decodeReachRequest(f).addrs
      } catch (e) {
        if (!(e instanceof ReachProtocolError)) throw e
        return
      }
      for (const p of dialBackPlan(me, '203.0.113.7', addrs)) {
        if (p.target !== null) expect(p.target).toMatch(new RegExp(`^/ip4/203\\.0\\.113\\.7/tcp/\\d+/p2p/${me}$`))
      }
    }), { numRuns: RUNS })
  })

  it(`entry check: ${RUNS} mutated entries, only EntryCheckError, and none verifies unless it is the signed entry`, async () => {
    const p = await makeParty()
    const entry = signPeerEntryV2(p.signer, { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`], role: 'provider', seq: 9, exp: 2_000_000_000, datasets: ['trips'] })
    const canon = JSON.stringify(entry)
    const now = 1_999_000_000_000
    fc.assert(fc.property(mutated([utf8(canon)]), (f) => {
      let raw: unknown
      try {
        raw = JSON.parse(fromUtf8(f))
      } catch {
        return
      }
      try {
        const e = verifyPeerEntryV2(raw, 'e', now)
        // a verified mutation can only differ in JSON spelling, never in content
        expect(JSON.stringify(e)).toBe(canon)
      } catch (err) {
        if (!(err instanceof EntryCheckError)) throw err
      }
    }), { numRuns: RUNS })
  })
})
