// Signed aborts (abort.ts): bound to their session, sender and recipient; a relay embeds the
// original once and accuses nobody; an unproven accusation is signed only as a dispute; the
// offline verifier (evidence.ts) tells a proven accusation from a claim.
import { describe, expect, it, beforeAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { decodeAbort, encodeAbort, heardAbort, signAbort, MSG_ABORT, type AbortMessage } from '../../src/protocol/abort.ts'
import { makeBundle, settle, verifyBundle } from '../../src/protocol/evidence.ts'
import { canonicalBytes } from '../../src/crypto/canonical.ts'
import { makeParties, inspectTestCertificate, testCertificate, type Party } from '../helpers/parties.ts'

let buyer: Party
let a: Party
let b: Party
let c: Party
const session = new Uint8Array(randomBytes(32))
const deps = { inspectCertificate: inspectTestCertificate }
const frameOf = (m: AbortMessage): Uint8Array => Uint8Array.from([MSG_ABORT, ...canonicalBytes(m)])

beforeAll(async () => {
  const ps = await makeParties(3)
  buyer = ps.buyer
  ;[a, b, c] = ps.providers as [Party, Party, Party]
})

describe('abort binding (issue 16: aborts are bound to their session)', () => {
  it('a valid abort from the stream peer, to us, in our session decodes', () => {
    const d = decodeAbort(encodeAbort(a.signer, session, b.peerId, { reason: 'local_error', accused: null, detail: 'x' }), a.peerId, { self: b.peerId, session })
    expect(d.ok).toBe(true)
  })

  it.each([
    ['another session', () => encodeAbort(a.signer, new Uint8Array(randomBytes(32)), b.peerId, { reason: 'local_error', accused: null, detail: 'x' }), 'another session'],
    ['no session (null)', () => encodeAbort(a.signer, null, b.peerId, { reason: 'local_error', accused: null, detail: 'x' }), 'no session'],
    ['another recipient', () => encodeAbort(a.signer, session, c.peerId, { reason: 'local_error', accused: null, detail: 'x' }), 'another peer']
  ])('an abort bound to %s is no evidence: the run ends, nobody is accused', (_n, mk, problem) => {
    const frame = mk() // built inside the test: the parties exist only after beforeAll
    const d = decodeAbort(frame, a.peerId, { self: b.peerId, session })
    expect(d.ok).toBe(false)
    if (!d.ok) expect(d.problem).toContain(problem)
    const info = heardAbort(frame, a.peerId, { self: b.peerId, session })
    expect([info.reason, info.accused, info.cause]).toEqual(['peer_abort', null, undefined])
  })

  it('an abort signed by someone other than the stream peer, or altered, does not verify', () => {
    const m = signAbort(c.signer, session, b.peerId, { reason: 'local_error', accused: null, detail: 'x' })
    expect(decodeAbort(frameOf(m), a.peerId, { self: b.peerId, session }).ok).toBe(false)
    const mine = signAbort(a.signer, session, b.peerId, { reason: 'local_error', accused: null, detail: 'x' })
    expect(decodeAbort(frameOf({ ...mine, detail: 'y' }), a.peerId, { self: b.peerId, session }).ok).toBe(false)
  })

  it('an accusation without proof is signed as the dispute [self, accused]; with proof (settle) as an accusation', () => {
    const m = signAbort(a.signer, session, b.peerId, { reason: 'bad_vector', accused: c.peerId, detail: 'x' })
    expect([m.accused, m.disputants]).toEqual([null, [a.peerId, c.peerId]])
    const s1 = settle({ reason: 'bad_vector', accused: c.peerId, detail: 'x', evidence: { kind: 'nonsense' } }, a.peerId, session, deps)
    expect([s1.accused, s1.disputants]).toEqual([null, [a.peerId, c.peerId]])
    const timeout = settle({ reason: 'timeout', accused: c.peerId, detail: 'x' }, a.peerId, session, deps)
    expect([timeout.accused, timeout.disputants]).toEqual([null, [a.peerId, c.peerId]])
  })

  it('check 3 evidence: two buyer-signed certificates for one proposal prove the buyer equivocated', () => {
    const proposal = new Uint8Array(randomBytes(32))
    const other = new Uint8Array(randomBytes(32))
    const ev = { kind: 'certificates', ours: testCertificate(buyer, session, proposal), theirs: testCertificate(buyer, other, proposal) }
    const s = settle({ reason: 'buyer_equivocation', accused: buyer.peerId, detail: 'x', evidence: ev }, a.peerId, session, deps)
    expect(s.accused).toBe(buyer.peerId)
    expect(s.proven).toMatch(/two different certificates/)
    const report = verifyBundle(JSON.parse(JSON.stringify(makeBundle(signAbort(a.signer, session, null, s)))), deps)
    expect(report.verdict).toBe('proven')
    // the same certificates cannot be turned against a provider
    const framed = settle({ reason: 'buyer_equivocation', accused: c.peerId, detail: 'x', evidence: ev }, a.peerId, session, deps)
    expect(framed.accused).toBe(null)
  })

  it('a relay embeds the original once (never a relay of a relay) and accuses nobody', () => {
    const original = signAbort(a.signer, session, b.peerId, { reason: 'local_error', accused: null, detail: 'x' })
    const heardByB = heardAbort(frameOf(original), a.peerId, { self: b.peerId, session })
    expect((heardByB.cause as AbortMessage).sig).toBe(original.sig)
    const relay = signAbort(b.signer, session, c.peerId, heardByB)
    expect([relay.accused, relay.evidence, relay.cause?.sig]).toEqual([null, null, original.sig])
    const heardByC = heardAbort(frameOf(relay), b.peerId, { self: c.peerId, session })
    expect((heardByC.cause as AbortMessage).sig).toBe(original.sig) // the original, not B's relay
    // a hand-made relay of a relay is refused as malformed
    const nested = signAbort(b.signer, session, c.peerId, { ...heardByB, cause: relay })
    expect(decodeAbort(frameOf(nested), b.peerId, { self: c.peerId, session }).ok).toBe(false)
  })

  it('a bundle with a tampered cause is invalid; one from another session too', () => {
    const original = signAbort(a.signer, session, b.peerId, { reason: 'local_error', accused: null, detail: 'x' })
    const info = heardAbort(frameOf(original), a.peerId, { self: b.peerId, session })
    const good = makeBundle(signAbort(b.signer, session, null, info))
    expect(verifyBundle(JSON.parse(JSON.stringify(good)), deps).verdict).toBe('unattributed')
    const bad = makeBundle(signAbort(b.signer, session, null, { ...info, cause: { ...original, detail: 'changed' } }))
    expect(verifyBundle(JSON.parse(JSON.stringify(bad)), deps).verdict).toBe('invalid')
    expect(verifyBundle({ v: 1, type: 'other' }, deps).verdict).toBe('invalid')
  })
})
