// The directory's registry (protocols/directory.md §4): own entries only, seq monotonic per peer
// (also across expiry and restart), caps, rate, expired entries dropped; the wire messages bounded.
import { describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeParty, type Party } from '../helpers/parties.ts'
import { signPeerEntryV2, type SignedPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'
import { DirectoryRegistry, SEQ_RETENTION_MS } from '../../src/directory/registry.ts'
import { decodeRequest, decodeResponse, DirectoryProtocolError } from '../../src/directory/messages.ts'
import { utf8 } from '../../src/crypto/bytes.ts'

function entry(p: Party, seq: number, expS: number, name = 'alpha'): SignedPeerEntryV2 {
  return signPeerEntryV2(p.signer, { name, addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`], role: 'provider', seq, exp: expS })
}

function setup(opts: { maxPeers?: number; minPublishIntervalMs?: number } = {}): { path: string; clock: { t: number }; open: () => DirectoryRegistry } {
  const path = join(mkdtempSync(join(tmpdir(), 'dir-')), 'directory.jsonl')
  const clock = { t: 1_800_000_000_000 }
  return { path, clock, open: () => new DirectoryRegistry(path, { now: () => clock.t, minPublishIntervalMs: 0, ...opts }) }
}

describe('directory registry', () => {
  it('stores a peer\'s own entry, replaces it with a newer seq, and refuses a replayed older one', async () => {
    const { clock, open } = setup()
    const r = open()
    const a = await makeParty()
    const s = clock.t / 1000
    expect(r.publish(entry(a, 5, s + 3600), a.peerId)).toMatchObject({ ok: true, change: 'added' })
    expect(r.publish(entry(a, 5, s + 3600), a.peerId)).toMatchObject({ ok: true, change: 'unchanged' })
    expect(r.publish(entry(a, 6, s + 3600, 'alpha2'), a.peerId)).toMatchObject({ ok: true, change: 'replaced' })
    expect(r.publish(entry(a, 5, s + 3600), a.peerId)).toMatchObject({ ok: false, code: 'stale' })
    // the same seq for a different entry is a replay too
    expect(r.publish(entry(a, 6, s + 7200), a.peerId)).toMatchObject({ ok: false, code: 'stale' })
    expect(r.list().entries.map((e) => e.name)).toEqual(['alpha2'])
  })

  it('publishes only the connection\'s own entry', async () => {
    const { clock, open } = setup()
    const r = open()
    const [a, b] = [await makeParty(), await makeParty()]
    const res = r.publish(entry(a, 1, clock.t / 1000 + 60), b.peerId)
    expect(res).toMatchObject({ ok: false, code: 'not_yours' })
    expect(r.list().entries).toEqual([])
  })

  it('refuses invalid entries (forged, expired) as bad_entry', async () => {
    const { clock, open } = setup()
    const r = open()
    const a = await makeParty()
    const forged = { ...entry(a, 1, clock.t / 1000 + 60), name: 'mallory' }
    expect(r.publish(forged, a.peerId)).toMatchObject({ ok: false, code: 'bad_entry', detail: expect.stringMatching(/does not verify/) })
    expect(r.publish(entry(a, 1, clock.t / 1000 - 3600), a.peerId)).toMatchObject({ ok: false, code: 'bad_entry', detail: expect.stringMatching(/expired/) })
    expect(r.publish({ v: 2 }, a.peerId)).toMatchObject({ ok: false, code: 'bad_entry' })
  })

  it('drops expired entries but remembers the seq, so an older still-valid entry cannot come back', async () => {
    const { clock, open } = setup()
    const r = open()
    const a = await makeParty()
    const s = clock.t / 1000
    const older = entry(a, 1, s + 30 * 86_400) // long-lived, signed first
    const newer = entry(a, 2, s + 600) // short-lived, published
    expect(r.publish(newer, a.peerId)).toMatchObject({ ok: true })
    clock.t += 3600 * 1000 // newer has expired (and its skew)
    expect(r.list().entries).toEqual([])
    expect(r.size).toBe(0)
    expect(r.publish(older, a.peerId)).toMatchObject({ ok: false, code: 'stale' })
    // the seq record itself outlives every entry that could have been signed before it
    clock.t += SEQ_RETENTION_MS
    expect(r.publish(entry(a, 1, clock.t / 1000 + 60), a.peerId)).toMatchObject({ ok: true, change: 'added' })
  })

  it('survives a restart: entries and seq records are on disk', async () => {
    const { clock, open } = setup()
    const a = await makeParty()
    const s = clock.t / 1000
    expect(open().publish(entry(a, 3, s + 3600), a.peerId)).toMatchObject({ ok: true })
    const again = open()
    expect(again.list().entries.map((e) => e.seq)).toEqual([3])
    expect(again.publish(entry(a, 2, s + 3600), a.peerId)).toMatchObject({ ok: false, code: 'stale' })
  })

  it('caps the number of peers and the publish rate of one peer', async () => {
    const { clock, open } = setup({ maxPeers: 2, minPublishIntervalMs: 1000 })
    const r = open()
    const ps = [await makeParty(), await makeParty(), await makeParty()]
    const s = clock.t / 1000
    expect(r.publish(entry(ps[0] as Party, 1, s + 60), (ps[0] as Party).peerId)).toMatchObject({ ok: true })
    expect(r.publish(entry(ps[1] as Party, 1, s + 60), (ps[1] as Party).peerId)).toMatchObject({ ok: true })
    expect(r.publish(entry(ps[2] as Party, 1, s + 60), (ps[2] as Party).peerId)).toMatchObject({ ok: false, code: 'full' })
    expect(r.publish(entry(ps[0] as Party, 2, s + 60), (ps[0] as Party).peerId)).toMatchObject({ ok: false, code: 'rate' })
    clock.t += 1000
    expect(r.publish(entry(ps[0] as Party, 2, s + 60), (ps[0] as Party).peerId)).toMatchObject({ ok: true, change: 'replaced' })
  })

  it('lists in peer-ID order, page by page', async () => {
    const { clock, open } = setup()
    const r = open()
    const ps = await Promise.all(Array.from({ length: 5 }, makeParty))
    for (const p of ps) expect(r.publish(entry(p, 1, clock.t / 1000 + 60), p.peerId)).toMatchObject({ ok: true })
    const ids = ps.map((p) => p.peerId).sort()
    expect(r.list().entries.map((e) => e.peerId)).toEqual(ids)
    expect(r.list(ids[2]).entries.map((e) => e.peerId)).toEqual(ids.slice(3))
  })
})

describe('directory messages', () => {
  const enc = (v: unknown): Uint8Array => utf8(JSON.stringify(v))
  it('decodes the two requests and refuses anything else', () => {
    expect(decodeRequest(enc({ v: 1, type: 'list' }))).toEqual({ v: 1, type: 'list' })
    expect(decodeRequest(enc({ v: 1, type: 'list', after: 'x' }))).toEqual({ v: 1, type: 'list', after: 'x' })
    expect(decodeRequest(enc({ v: 1, type: 'publish', entry: { a: 1 } }))).toMatchObject({ type: 'publish' })
    for (const bad of [{ v: 2, type: 'list' }, { v: 1, type: 'delete' }, { v: 1, type: 'list', after: 3 }, { v: 1, type: 'list', x: 1 }, { v: 1, type: 'publish', entry: [] }, []]) {
      expect(() => decodeRequest(enc(bad)), JSON.stringify(bad)).toThrow(DirectoryProtocolError)
    }
    expect(() => decodeRequest(utf8('['.repeat(10) + ']'.repeat(10)))).toThrow(/nesting deeper than 6/)
    expect(() => decodeRequest(utf8('{"v":1,"type":"list","after":"' + 'x'.repeat(600) + '"}'))).toThrow(/longer than 512/)
    expect(() => decodeRequest(utf8('{not json'))).toThrow(DirectoryProtocolError)
  })
  it('bounds a page of entries', () => {
    expect(decodeResponse(enc({ v: 1, type: 'entries', entries: Array(100).fill({}), more: false })).type).toBe('entries')
    expect(() => decodeResponse(enc({ v: 1, type: 'entries', entries: Array(101).fill({}), more: false }))).toThrow(/more than 100 elements/)
    expect(() => decodeResponse(enc({ v: 1, type: 'error', code: 'nope', detail: '' }))).toThrow(DirectoryProtocolError)
    expect(decodeResponse(enc({ v: 1, type: 'error', code: 'stale', detail: 'a\u001bb' }))).toEqual({ v: 1, type: 'error', code: 'stale', detail: 'a?b' })
  })
})
