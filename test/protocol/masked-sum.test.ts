// The masked sum end to end in one process over memory channels: correctness, and one test per
// check of protocols/masked-sum.md §8 with a deliberately deviating party.
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { ProtocolAbort } from '../../src/protocol/errors.ts'
import { CANARIES, LABEL, MSG, encodeJson, signBody, xcheckDigest } from '../../src/protocol/masked-sum-messages.ts'
import { resultCommitment } from '../../src/protocol/masked-sum-provider.ts'
import type { BuyerRunResult, BuyerState } from '../../src/protocol/masked-sum-buyer.ts'
import type { InclusionBody } from '../../src/protocol/masked-sum-provider.ts'
import { equalBytes, fromHex, toHex } from '../../src/crypto/bytes.ts'
import { signAbort } from '../../src/protocol/abort.ts'
import { makeBundle, verifyBundle, type BundleReport } from '../../src/protocol/evidence.ts'
import { inspectTestCertificate, makeParty, plainSum, randomVector, runAll, setup, testCertificate, type Party, type RunAllResult, type Setup } from '../helpers/parties.ts'
import { memoryChannelPair } from '../../src/protocol/transport.ts'

function abortOf(r: PromiseSettledResult<unknown>): ProtocolAbort {
  if (r.status !== 'rejected') throw new Error('expected the run to abort, it succeeded')
  expect(r.reason).toBeInstanceOf(ProtocolAbort)
  return r.reason as ProtocolAbort
}

/**
 * Each party's evidence bundle as `mpc-agent evidence verify` reads it: the party's own signed
 * statement of its abort (a relay embeds the original as its cause), checked offline.
 */
function bundles(s: Setup, res: RunAllResult): Array<{ who: string; abort: ProtocolAbort; report: BundleReport }> {
  const parties = [s.buyer, ...s.providers]
  return [res.buyer, ...res.providers].map((r, i) => {
    const abort = abortOf(r)
    const party = parties[i] as Party
    const report = verifyBundle(JSON.parse(JSON.stringify(makeBundle(signAbort(party.signer, s.params.session, null, abort.info)))), { inspectCertificate: inspectTestCertificate })
    return { who: party.peerId, abort, report }
  })
}

/**
 * Every party aborted; someone raised `reason` against `accused`, proven by evidence that verifies
 * offline; nobody (relays included) signed an accusation of anyone else; nobody released a result.
 */
function expectAbort(s: Setup, res: RunAllResult, reason: string, accused: string | null): void {
  const all = bundles(s, res)
  const first = all.filter((a) => a.abort.reason === reason)
  expect(first.length, `someone raises ${reason}; got ${all.map((a) => a.abort.reason).join(',')}`).toBeGreaterThan(0)
  for (const a of first) {
    expect(a.abort.accused).toBe(accused)
    expect(a.report.verdict).toBe(accused ? 'proven' : 'unattributed')
  }
  for (const a of all) expect([null, accused]).toContain(a.abort.accused)
}

/**
 * The check cannot be attributed: someone raised `reason` naming `deviator` as one side of a dispute
 * (or as the silent peer), and that is all its evidence proves; nobody accuses anyone.
 */
function expectDispute(s: Setup, res: RunAllResult, reason: string, deviator: string): void {
  const all = bundles(s, res)
  const first = all.filter((a) => a.abort.reason === reason)
  expect(first.length, `someone raises ${reason}; got ${all.map((a) => a.abort.reason).join(',')}`).toBeGreaterThan(0)
  for (const a of first) {
    expect(a.abort.info.disputants).toContain(deviator)
    expect(a.report.verdict).toBe(reason === 'timeout' ? 'silence' : 'dispute')
  }
  for (const a of all) {
    expect(a.abort.accused, `${a.who} accuses nobody`).toBe(null)
    expect(['dispute', 'silence', 'unattributed']).toContain(a.report.verdict)
  }
}

const fast = { timeouts: { negotiate_s: 2, compute_s: 3, confirm_s: 2 } }

describe('masked sum: correctness', () => {
  it('3 providers: the buyer gets exactly the plaintext sum', async () => {
    const s = await setup(3, 1000)
    const vectors = s.providers.map(() => randomVector(1000))
    const res = await runAll(s, { vectors })
    expect(res.buyer.status).toBe('fulfilled')
    if (res.buyer.status !== 'fulfilled') return
    expect(Array.from(res.buyer.value.total)).toEqual(Array.from(plainSum(vectors, 1000)))
    for (const p of res.providers) expect(p.status).toBe('fulfilled')
  })

  it('5 providers, several chunks, an output provider receives the result that opens the commitment', async () => {
    const L = 150_000
    const s0 = await setup(5, L)
    s0.params.outputProviders = [s0.providers[2]?.peerId as string]
    const vectors = s0.providers.map(() => randomVector(L, 50))
    const res = await runAll(s0, { vectors })
    if (res.buyer.status !== 'fulfilled') throw res.buyer.reason
    const want = plainSum(vectors, L)
    expect(res.buyer.value.total).toEqual(want)
    const out = res.providers[2]
    if (out?.status !== 'fulfilled') throw new Error('output provider failed')
    expect(out.value.result).toEqual(want)
    expect(res.providers[0]?.status === 'fulfilled' && res.providers[0].value.result).toBe(undefined)
    expect(equalBytes(resultCommitment(res.buyer.value.r, want), res.buyer.value.commitment)).toBe(true)
  })
})

describe('masked sum: runner start before its inputs (as serve starts it)', () => {
  it('streams and the vector arrive late, co-provider streams in chain order: the sum is exact', async () => {
    const s = await setup(4, 2000)
    const vectors = s.providers.map(() => randomVector(2000))
    const rank = new Map(s.providers.map((p, i) => [p.peerId, i]))
    const res = await runAll(s, {
      vectors,
      // the stream between providers i < j arrives after 20·(i + j) ms: the last pair is the slowest
      late: { buyer: 30, vector: 50, peer: (a, b) => 20 * ((rank.get(a) ?? 0) + (rank.get(b) ?? 0)) }
    })
    if (res.buyer.status !== 'fulfilled') throw res.buyer.reason
    expect(res.buyer.value.total).toEqual(plainSum(vectors, 2000))
    for (const p of res.providers) expect(p.status).toBe('fulfilled')
  })

  it('a provider streams while a cross-check is still pending, but reveals nothing when that cross-check then fails', async () => {
    const s = await setup(3, 70_000, fast) // two chunks
    const bad = s.providers[2]?.peerId as string
    const sent = new Map<string, number[]>(s.providers.map((p) => [p.peerId, []]))
    // per honest provider: its stream to the bad one is still to come (DELAY), and whether INCLUSION came first
    const pending = new Map<string, boolean>(s.providers.map((p) => [p.peerId, true]))
    const included = new Map<string, boolean>()
    const DELAY = 1000 // ample: the buyer sends INCLUSION within milliseconds of the last DONE
    setTimeout(() => { for (const p of pending.keys()) pending.set(p, false) }, DELAY)
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(70_000)),
      providerHooks: new Map([[bad, { confirmTag: (t: Uint8Array) => t.map((b) => b ^ 1) }]]),
      // the honest providers' stream to the bad one arrives only after they streamed
      late: { peer: (a, b) => (a === bad || b === bad ? DELAY : 0) },
      tapToBuyer: (p, f) => sent.get(p)?.push(f[0] as number),
      tapFromBuyer: (p, f) => {
        if (f[0] === MSG.inclusion) included.set(p, pending.get(p) ?? false)
      }
    })
    expectDispute(s, res, 'key_confirmation_failed', bad)
    for (const p of s.providers.slice(0, 2)) {
      const types = sent.get(p.peerId) as number[]
      expect(types.filter((t) => t === 0x20).length, 'streamed before the cross-check ended').toBe(2)
      // INCLUSION reached it while its cross-check with the bad provider was still pending: only that gate held REVEAL back
      expect(included.get(p.peerId), 'INCLUSION arrived before the cross-check failed').toBe(true)
      expect(types).not.toContain(0x23) // no REVEAL
    }
  })

  it('a stream that arrives after the run failed is told why (ABORT), not left waiting', async () => {
    const s = await setup(3, 10, fast)
    const [a, b, c] = s.providers as [Party, Party, Party]
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(10)),
      providerHooks: new Map([[c.peerId, { confirmTag: (t: Uint8Array) => t.map((x) => x ^ 1) }]]),
      late: { peer: (x, y) => ((x === a.peerId && y === b.peerId) ? 600 : 0) }
    })
    // a learns of c's bad tag at once and fails; its stream to b arrives later and carries a's ABORT,
    // so b fails with a's relayed finding instead of a timeout
    expectDispute(s, res, 'key_confirmation_failed', c.peerId)
    const bAbort = abortOf(res.providers[1] as PromiseSettledResult<unknown>)
    expect(bAbort.reason).not.toBe('timeout')
  })
})

describe('masked sum: checks (one deviating party each)', () => {
  it('check 1: a START bound to another session → wrong_session, a dispute with the buyer (a START of another run proves no fault)', async () => {
    const s = await setup(3, 10, fast)
    const other = { ...s.params, session: new Uint8Array(randomBytes(32)) }
    const res = await runAll({ ...s, params: other }, {
      vectors: s.providers.map(() => randomVector(10)),
      paramsFor: () => s.params,
      certificateFor: () => testCertificate(s.buyer, s.params.session, s.proposal)
    })
    expectDispute({ ...s, params: other }, res, 'wrong_session', s.buyer.peerId)
  })

  it('check 2: a START from a party that is not the buyer → wrong_role, a dispute with that party', async () => {
    const s = await setup(3, 10, fast)
    const victim = s.providers[0] as Party
    const stranger = await makeParty()
    const [victimEnd, strangerEnd] = memoryChannelPair(victim.peerId, stranger.peerId) // victimEnd.remote = stranger
    await strangerEnd.send(encodeJson(MSG.start, signBody(stranger.signer, LABEL.start, { v: 4, type: 'start', session: toHex(s.params.session), from: stranger.peerId, to: victim.peerId })))
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), buyerChannelFor: (p) => (p === victim.peerId ? victimEnd : undefined) })
    const raised = abortOf(res.providers[0] as PromiseSettledResult<unknown>)
    expect(raised.reason).toBe('wrong_role')
    expect(raised.accused).toBe(null)
    expect(raised.info.disputants).toEqual([victim.peerId, stranger.peerId])
    expect(res.buyer.status).toBe('rejected') // and the run ends for everyone
  })

  it('check 3: the buyer equivocates (two certificates for one proposal) → buyer_equivocation with both as evidence', async () => {
    const s = await setup(3, 10, fast)
    const target = s.providers[0]?.peerId as string
    const forked = { ...s.params, session: new Uint8Array(randomBytes(32)) }
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(10)),
      paramsFor: (p) => (p === target ? forked : s.params),
      certificateFor: (p) => testCertificate(s.buyer, p === target ? forked.session : s.params.session, s.proposal)
    })
    expectAbort(s, res, 'buyer_equivocation', s.buyer.peerId)
    const ev = res.providers.map(abortOf).find((a) => a.reason === 'buyer_equivocation')?.info.evidence as { ours: unknown; theirs: unknown }
    expect(ev.ours).not.toEqual(ev.theirs)
  })

  // check 3′ (4.0.0): an XCERT names the digest of its sender's XCHECK on the stream, so the two are bound together
  it('check 3′: a co-provider whose XCERT, naming its XCHECK, is for another session → it is accused, provably', async () => {
    const s = await setup(3, 10, fast)
    const bad = s.providers[1]?.peerId as string
    const other = new Uint8Array(randomBytes(32))
    const forged = { session: other, xcertSession: new Uint8Array(randomBytes(32)), certificate: testCertificate(s.buyer, other, s.proposal) }
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), providerHooks: new Map([[bad, { forgeXcheck: forged }]]) })
    expectAbort(s, res, 'malformed_message', bad)
    for (const a of bundles(s, res).filter((x) => x.abort.reason === 'malformed_message')) expect(a.report.proves.join(' ')).toMatch(/naming that XCHECK, an XCERT for another session/)
  })

  it('check 3′: a co-provider whose XCERT names another XCHECK than the one it sent → a dispute (nothing binds the two)', async () => {
    const s = await setup(3, 10, fast)
    const bad = s.providers[1]?.peerId as string
    const other = new Uint8Array(randomBytes(32))
    const forged = { session: other, certificate: testCertificate(s.buyer, other, s.proposal), xcheckDigest: toHex(new Uint8Array(randomBytes(32))) }
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), providerHooks: new Map([[bad, { forgeXcheck: forged }]]) })
    expectDispute(s, res, 'malformed_message', bad)
  })

  it('check 3′ framing: an honest provider\'s XCHECK of one run and XCERT of another, shown together, prove nothing against it', async () => {
    // H signs XCHECK(S1) to M in run 1, and in run 2 answers M's mismatching XCHECK with XCERT(S2), which names
    // H's own XCHECK of run 2: M shows the run-1 XCHECK beside it (before 4.0.0 this verified as "proven")
    const s = await setup(3, 10, fast)
    const [h, m] = [s.providers[0] as Party, s.providers[1] as Party]
    const s1 = toHex(new Uint8Array(randomBytes(32)))
    const s2 = toHex(new Uint8Array(randomBytes(32)))
    const xcheckOf = (session: string) => signBody(h.signer, LABEL.xcheck, { v: 4, type: 'xcheck', session, proposal: toHex(s.proposal), confirm: '00'.repeat(32), from: h.peerId, to: m.peerId })
    const xcheck1 = xcheckOf(s1)
    const xcert = signBody(h.signer, LABEL.xcert, { v: 4, type: 'xcert', session: s2, xcheck: xcheckDigest(xcheckOf(s2)) as string, certificate: testCertificate(s.buyer, fromHex(s2, 32), s.proposal), from: h.peerId, to: m.peerId })
    const claim = signAbort(m.signer, new Uint8Array(randomBytes(32)), null, { reason: 'malformed_message', accused: h.peerId, detail: 'framed', evidence: { kind: 'xcert', xcheck: xcheck1, xcert }, proven: 'signed as an accusation by M' })
    const report = verifyBundle(JSON.parse(JSON.stringify(makeBundle(claim))), { inspectCertificate: inspectTestCertificate })
    expect(report.verdict).not.toBe('proven')
    expect(['unproven', 'dispute']).toContain(report.verdict)
  })

  // check 3′, attributable: XCHECK and XCERT for the same session, whose certificate does not back the XCHECK
  for (const [name, forge, detail] of [
    ['a certificate its buyer did not sign', (s: Setup, other: Uint8Array) => ({ session: other, certificate: { ...testCertificate(s.buyer, other, s.proposal), sig: toHex(new Uint8Array(64)) } }), /no certificate its buyer signed/],
    ['a buyer-signed certificate for another proposal', (s: Setup, other: Uint8Array) => ({ session: other, certificate: testCertificate(s.buyer, other, new Uint8Array(randomBytes(32))) }), /certificate for another proposal/]
  ] as const) {
    it(`check 3′: a co-provider cross-checks another session and shows ${name} → it is accused, proven by its own XCHECK and XCERT`, async () => {
      const s = await setup(3, 10, fast)
      const bad = s.providers[1]?.peerId as string
      const forged = forge(s, new Uint8Array(randomBytes(32)))
      const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), providerHooks: new Map([[bad, { forgeXcheck: forged }]]) })
      const reason = 'wrong_session'
      expectAbort(s, res, reason, bad)
      const raised = bundles(s, res).filter((a) => a.abort.reason === reason)
      // both honest co-providers raise it; each one's evidence is the deviant's XCHECK and XCERT addressed to it
      expect(raised.map((a) => a.who).sort()).toEqual(s.providers.map((p) => p.peerId).filter((p) => p !== bad).sort())
      for (const a of raised) {
        expect((a.abort.info.evidence as { kind: string }).kind).toBe('xcert')
        expect(a.report.proves.join(' ')).toMatch(detail)
      }
      expect(res.buyer.status).toBe('rejected')
    })
  }

  it('check 3″: a co-provider cross-checks another session and never shows its certificate → no answer from it (silence proves nothing)', async () => {
    const s = await setup(3, 10, fast)
    const bad = s.providers[1]?.peerId as string
    const other = new Uint8Array(randomBytes(32))
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), providerHooks: new Map([[bad, { forgeXcheck: { session: other, certificate: null, omitXcert: true } }]]) })
    expectDispute(s, res, 'timeout', bad)
  })

  it('check 5: a provider with a wrong pair key is named in a dispute by each co-provider (a tag only the pair can check)', async () => {
    const s = await setup(3, 10, fast)
    const bad = s.providers[1]?.peerId as string
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(10)),
      providerHooks: new Map([[bad, { confirmTag: (t: Uint8Array) => t.map((b) => b ^ 1) }]])
    })
    expectDispute(s, res, 'key_confirmation_failed', bad)
  })

  for (const [name, frames] of [
    ['duplicate chunk', (i: number, f: Uint8Array) => (i === 0 ? [f, f] : [f])],
    ['missing chunk', (i: number, f: Uint8Array) => (i === 0 ? [] : [f])],
    ['truncated chunk', (_i: number, f: Uint8Array) => [f.subarray(0, f.length - 8)]],
    ['chunks out of order', (() => { let first: Uint8Array | undefined; return (i: number, f: Uint8Array) => (i === 0 ? ((first = f), []) : [f, first as Uint8Array]) })()],
    // a value changed after DONE's hash was taken: the stream no longer matches what the provider signed
    ['a chunk that does not match DONE\'s hash', (i: number, f: Uint8Array) => { if (i !== 1) return [f]; const g = f.slice(); g[16] = (g[16] as number) ^ 1; return [g] }]
  ] as const) {
    it(`check 4: ${name} → bad_vector, a dispute between the buyer and that provider`, async () => {
      const s = await setup(3, 70_000, fast) // two chunks
      const bad = s.providers[2]?.peerId as string
      const res = await runAll(s, { vectors: s.providers.map(() => randomVector(70_000)), providerHooks: new Map([[bad, { chunkFrames: frames }]]) })
      expectDispute(s, res, 'bad_vector', bad)
    })
  }

  it('check 4: a vector of the wrong length → bad_vector', async () => {
    const s = await setup(3, 100, fast)
    const bad = s.providers[0]?.peerId as string
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(100)),
      providerHooks: new Map([[bad, { chunkFrames: (_i: number, f: Uint8Array) => { const g = new Uint8Array(f.length + 8); g.set(f); new DataView(g.buffer).setUint32(12, 105, true); return [g] } }]])
    })
    expectDispute(s, res, 'bad_vector', bad)
  })

  it('check 6: a wrong mask (canary) → canary_nonzero, unattributed, nothing released', async () => {
    const s = await setup(3, 100, fast)
    const bad = s.providers[1]?.peerId as string
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(100)),
      providerHooks: new Map([[bad, { mutateChunk: (_i: number, _o: number, y: BigUint64Array) => { y[100 + 2] = (y[100 + 2] as bigint) + 1n } }]])
    })
    expectAbort(s, res, 'canary_nonzero', null)
  })

  it('check 6: a wrong self-mask seed revealed → canary_nonzero', async () => {
    const s = await setup(3, 100, fast)
    const bad = s.providers[0]?.peerId as string
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(100)), providerHooks: new Map([[bad, { revealSeed: (x: Uint8Array) => x.map((b) => b ^ 0xff) }]]) })
    expectAbort(s, res, 'canary_nonzero', null)
  })

  it('check 6b: an implausible total (beyond clip × max rows) is flagged for the buyer; the run completes for everyone', async () => {
    const s = await setup(3, 100, { ...fast, bounds: [{ min: 0n, max: 3000n }] })
    const vectors = s.providers.map(() => randomVector(100))
    ;(vectors[0] as BigUint64Array)[7] = 5000n
    const want = plainSum(vectors, 100)
    const res = await runAll(s, { vectors })
    expect(res.buyer.status).toBe('fulfilled')
    for (const p of res.providers) expect(p.status).toBe('fulfilled')
    const b = (res.buyer as PromiseFulfilledResult<BuyerRunResult>).value
    expect(b.implausible).toEqual([7])
    expect(Array.from(b.total)).toEqual(Array.from(want))
  })

  it('check 6b sends nothing: every frame a provider receives from the buyer has the same type, size and fields whether or not a total was implausible', async () => {
    const s = await setup(3, 100, { ...fast, bounds: [{ min: 0n, max: 3000n }] })
    const seen = async (implausible: boolean): Promise<Map<string, string[]>> => {
      const vectors = s.providers.map(() => randomVector(100))
      if (implausible) (vectors[0] as BigUint64Array)[7] = 5000n
      const frames = new Map<string, string[]>(s.providers.map((p) => [p.peerId, []]))
      const res = await runAll(s, { vectors, tapFromBuyer: (p, f) => {
        // a JSON message's shape (its field names and every value's length), a binary frame's type and size
        const shape = f[0] === MSG.chunk ? `${f[0]}:${f.length}` : `${f[0]}:${f.length}:${JSON.stringify(Object.entries(JSON.parse(new TextDecoder().decode(f.subarray(1))) as Record<string, unknown>).map(([k, v]) => [k, JSON.stringify(v).length]))}`
        frames.get(p)?.push(shape)
      } })
      expect(res.buyer.status).toBe('fulfilled')
      expect((res.buyer as PromiseFulfilledResult<BuyerRunResult>).value.implausible.length > 0).toBe(implausible)
      return frames
    }
    const flagged = await seen(true)
    const plain = await seen(false)
    for (const p of s.providers) {
      expect(flagged.get(p.peerId)?.length).toBeGreaterThan(2) // START, INCLUSION, RECEIPT at least
      expect(flagged.get(p.peerId)).toEqual(plain.get(p.peerId))
    }
  })

  it('§9.2: each provider\'s onReveal runs before its REVEAL is sent; if it fails, that provider reveals nothing', async () => {
    const s = await setup(3, 100, fast)
    const log: string[] = []
    const ok = await runAll(s, {
      vectors: s.providers.map(() => randomVector(100)),
      onReveal: (p) => log.push(`record ${p}`),
      tapToBuyer: (p, f) => { if (f[0] === MSG.reveal) log.push(`reveal ${p}`) }
    })
    expect(ok.buyer.status).toBe('fulfilled')
    for (const p of s.providers) {
      expect(log.indexOf(`record ${p.peerId}`)).toBeGreaterThanOrEqual(0)
      expect(log.indexOf(`record ${p.peerId}`)).toBeLessThan(log.indexOf(`reveal ${p.peerId}`))
    }
    const bad = s.providers[0]?.peerId as string
    const sent: string[] = []
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(100)),
      onReveal: (p) => { if (p === bad) throw new Error('disk full') },
      tapToBuyer: (p, f) => { if (f[0] === MSG.reveal) sent.push(p) }
    })
    expect(res.buyer.status).toBe('rejected')
    expect(sent).not.toContain(bad)
  })

  it('check 7: the buyer drops a provider\'s vector from the inclusion list → inclusion_mismatch, buyer accused, no seed revealed by the victim', async () => {
    const s = await setup(3, 100, fast)
    const victim = s.providers[1]?.peerId as string
    let seen: BuyerState | null = null
    const vectors = s.providers.map(() => randomVector(100))
    const res = await runAll(s, {
      vectors,
      buyerHooks: { inclusion: (b, p) => (p === victim ? { ...b, entries: b.entries.map((e) => (e.provider === victim ? { ...e, hash: '00'.repeat(32) } : e)) } : b) },
      onState: (st) => { if (st.phase !== 'revealed') seen = { ...st, sum: st.sum.slice() } }
    })
    expectAbort(s, res, 'inclusion_mismatch', s.buyer.peerId)
    const st = seen as BuyerState | null
    expect(st).not.toBeNull()
    expect(st?.revealed).toBe(0)
    expectMasked(st?.sum as BigUint64Array, plainSum(vectors, 100))
  })

  for (const [name, edit, reason] of [
    ['bound to another session', (b: InclusionBody) => ({ ...b, session: toHex(new Uint8Array(randomBytes(32))) }), 'wrong_session'],
    ['addressed to another peer', (b: InclusionBody) => ({ ...b, to: b.from }), 'bad_signature']
  ] as const) {
    it(`check 7′: an INCLUSION ${name} → ${reason}, a dispute with the buyer (nothing a third party could check), no seed revealed`, async () => {
      const s = await setup(3, 100, fast)
      const victim = s.providers[0]?.peerId as string
      const sent: number[] = []
      const res = await runAll(s, {
        vectors: s.providers.map(() => randomVector(100)),
        buyerHooks: { inclusion: (b, p) => (p === victim ? edit(b) : b) },
        tapToBuyer: (p, f) => { if (p === victim) sent.push(f[0] as number) }
      })
      expectDispute(s, res, reason, s.buyer.peerId)
      const raised = bundles(s, res).filter((a) => a.abort.reason === reason)
      expect(raised.map((a) => a.who)).toEqual([victim])
      expect(sent).toContain(MSG.done)
      expect(sent).not.toContain(MSG.reveal)
      expect(res.buyer.status).toBe('rejected')
    })
  }

  it('check 7″: an output recipient whose result does not open the buyer\'s signed commitment → inclusion_mismatch, a dispute with the buyer, no result kept', async () => {
    const s = await setup(3, 100, fast)
    const recipient = s.providers[1] as Party
    s.params.outputProviders = [recipient.peerId]
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(100)),
      buyerHooks: { resultToRecipients: (r) => { r[3] = (r[3] as bigint) + 1n; return r } }
    })
    const r = res.providers[1] as PromiseSettledResult<unknown>
    const abort = abortOf(r)
    expect(abort.reason).toBe('inclusion_mismatch')
    expect(abort.accused).toBe(null) // showing the mismatch needs the result: not attributable
    expect(abort.info.disputants).toEqual([recipient.peerId, s.buyer.peerId])
    const report = verifyBundle(JSON.parse(JSON.stringify(makeBundle(signAbort(recipient.signer, s.params.session, null, abort.info)))), { inspectCertificate: inspectTestCertificate })
    expect(report.verdict).toBe('dispute')
  })

  it('check 8: a provider that goes silent mid-run is named (timeout)', async () => {
    const s = await setup(3, 100, { timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } })
    const silent = s.providers[2]?.peerId as string
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(100)), providerHooks: new Map([[silent, { stallAt: 'stream' }]]) })
    const b = abortOf(res.buyer)
    expect(b.reason).toBe('timeout')
    expect(b.info.disputants).toEqual([s.buyer.peerId, silent]) // "no answer from silent (as seen by the buyer)"
    expectDispute(s, res, 'timeout', silent)
  })

  it('check 8: a provider silent at reveal is named, and the buyer\'s sum stays self-masked', async () => {
    const s = await setup(3, 100, { timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } })
    const silent = s.providers[0]?.peerId as string
    let seen: BuyerState | null = null
    const vectors = s.providers.map(() => randomVector(100))
    const res = await runAll(s, {
      vectors,
      providerHooks: new Map([[silent, { stallAt: 'reveal' }]]),
      onState: (st) => { seen = { ...st, sum: st.sum.slice() } }
    })
    const b = abortOf(res.buyer)
    expect([b.reason, b.accused, b.info.disputants]).toEqual(['timeout', null, [s.buyer.peerId, silent]])
    expectMasked((seen as BuyerState | null)?.sum as BigUint64Array, plainSum(vectors, 100))
  })
})

describe('masked sum: an abort at any phase releases nothing', () => {
  for (const stallAt of ['stream', 'done'] as const) {
    it(`abort at ${stallAt}: the running sum reveals nothing`, async () => {
      const s = await setup(3, 2000, { timeouts: { negotiate_s: 1, compute_s: 1, confirm_s: 1 } })
      const vectors = s.providers.map(() => randomVector(2000))
      let seen: BuyerState | null = null
      await runAll(s, {
        vectors,
        providerHooks: new Map([[s.providers[0]?.peerId as string, { stallAt }]]),
        onState: (st) => { seen = { ...st, sum: st.sum.slice() } }
      })
      const st = seen as BuyerState | null
      expect(st?.phase).toBe('streaming')
      // the other providers' chunks were summed: still self-masked, so nowhere near the partial plaintext
      expectMasked(st?.sum as BigUint64Array, plainSum(vectors.slice(1), 2000))
    })
  }
})

/** The buyer's state must not equal the plaintext anywhere beyond chance (2^-64 per cell). */
function expectMasked(sum: BigUint64Array, plain: BigUint64Array): void {
  let equal = 0
  for (let i = 0; i < plain.length; i++) if (sum[i] === plain[i]) equal++
  expect(equal).toBe(0)
  // and not merely offset: the top bytes look uniform. Their mean is within 6 standard errors of
  // 127.5 (uniform on 0..255 has σ = 73.9; a false alarm has probability < 1e-8), and they spread
  // out: n uniform draws hit ≈ 256·(1 − e^(−n/256)) distinct values (82 at n = 100), a plaintext
  // plus a constant offset hits one or two.
  const n = plain.length
  const tops = Array.from(sum, (v) => Number(v >> 56n))
  const mean = tops.reduce((a, b) => a + b, 0) / n
  expect(Math.abs(mean - 127.5)).toBeLessThan((6 * 73.9) / Math.sqrt(n))
  expect(new Set(tops).size).toBeGreaterThan(Math.min(n, 256) / 4)
}

export { CANARIES }

describe('framing: a relayed abort is never a fresh accusation (issue 16)', () => {
  it('a malicious provider claiming key_confirmation_failed against H: honest parties relay it as its cause, accuse nobody, and the claim verifies as unproven', async () => {
    const s = await setup(3, 10, fast)
    const [m, h, c] = [s.providers[0], s.providers[1], s.providers[2]] as [Party, Party, Party]
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(10)),
      // M signs an accusation of H with no evidence (`proven` forced: a malicious agent signs anything)
      providerHooks: new Map([[m.peerId, { abortWith: () => ({ reason: 'key_confirmation_failed', accused: h.peerId, detail: 'H\'s tag does not match', proven: 'forged' }) }]])
    })
    const all = bundles(s, res)
    for (const honest of [s.buyer, h, c]) {
      const b = all.find((x) => x.who === honest.peerId)
      if (!b) throw new Error('missing party')
      expect(b.abort.accused, `${honest.peerId} accuses nobody`).toBe(null)
      expect(b.abort.reason).toBe('peer_abort')
      // its bundle: its own relay (accusing nobody) with the original as cause; the original's
      // accusation of H rests on M's word, so verify reports it unproven
      expect(b.report.verdict).toBe('unproven')
      expect(b.report.statements.at(-1)?.by).toBe(m.peerId)
      expect(b.report.statements[0]?.by).toBe(honest.peerId)
    }
  })

  it('a relay of a relay embeds only the original: bounded evidence, one cause deep', async () => {
    const s = await setup(4, 10, fast)
    const [m, a] = [s.providers[0], s.providers[1]] as [Party, Party]
    const res = await runAll(s, {
      vectors: s.providers.map(() => randomVector(10)),
      providerHooks: new Map([[m.peerId, { abortWith: () => ({ reason: 'local_error', accused: null, detail: 'M stops' }) }]]),
      // A's streams arrive late, after others failed: A learns of M's abort only through relays
      late: { peer: (x, y) => (x === a.peerId || y === a.peerId ? 300 : 0), buyer: 300 }
    })
    for (const b of bundles(s, res)) {
      if (b.who === m.peerId) continue
      const cause = b.abort.info.cause as { by: string; cause: unknown } | undefined
      expect(cause?.by, `${b.who} embeds M's original abort`).toBe(m.peerId)
      expect(cause?.cause).toBe(null)
      expect(b.report.statements).toHaveLength(2)
    }
  })
})

describe('masked sum: the agreement deadline (SessionParams.deadline)', () => {
  it('a run still going when the deadline (plus skew) passes fails with timeout, naming nobody', async () => {
    // the deadline passed 30 s ago: with the 30 s skew allowance it expires at once; every party
    // stalls at a point it would otherwise wait through for seconds
    const s = await setup(3, 10, { timeouts: { negotiate_s: 20, compute_s: 20, confirm_s: 20 }, deadline: Date.now() - 30_000 })
    const t0 = Date.now()
    const res = await runAll(s, { vectors: s.providers.map(() => randomVector(10)), providerHooks: new Map([[s.providers[0]?.peerId as string, { stallAt: 'stream' }]]) })
    expect(Date.now() - t0).toBeLessThan(5000)
    for (const r of [res.buyer, ...res.providers]) {
      // its own deadline, or a co-party's relayed first: the original is the deadline's timeout
      const a = abortOf(r)
      const root = (a.info.cause ?? a.info) as { reason: string; accused: string | null; detail: string }
      expect([root.reason, root.accused, a.accused]).toEqual(['timeout', null, null])
      expect(root.detail).toMatch(/deadline/)
    }
  })
})
