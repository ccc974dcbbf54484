// The v2 signed peer entry (protocols/directory.md §2): every check refuses what it must, with the
// check named, and v1 entries still import.
import { describe, expect, it } from 'vitest'
import { makeParty, type Party } from '../helpers/parties.ts'
import { signPeerEntry, parseImportItem, PEER_ENTRY_LABEL } from '../../src/agent/peer-entry.ts'
import { ENTRY_LIMITS, EntryCheckError, PEER_ENTRY_LABEL_V2, parseTtl, signPeerEntryV2, verifyPeerEntryV2, type SignedPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'
import { statementDigest } from '../../src/crypto/sign.ts'
import { toHex, utf8 } from '../../src/crypto/bytes.ts'
import { readFileSync } from 'node:fs'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { signerFromSeed } from '../../src/crypto/sign.ts'
import { canonicalize } from '../../src/crypto/canonical.ts'

const NOW = 1_800_000_000_000 // a fixed clock (ms)
const nowS = NOW / 1000

function entry(p: Party, over: Partial<Omit<SignedPeerEntryV2, 'v' | 'peerId' | 'sig'>> = {}): SignedPeerEntryV2 {
  return signPeerEntryV2(p.signer, { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`], role: 'provider', seq: 7, exp: nowS + 86_400, ...over })
}

function checkOf(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    if (e instanceof EntryCheckError) return e.check
    return `${(e as Error).name}: ${(e as Error).message}`
  }
  return 'accepted'
}

describe('peer entry v2', () => {
  it('a fresh entry verifies, with and without the optional datasets and policy summary', async () => {
    const p = await makeParty()
    expect(verifyPeerEntryV2(JSON.parse(JSON.stringify(entry(p))), 'e', NOW).seq).toBe(7)
    const offered = entry(p, { datasets: ['trips', 'zones'], policy: { approval: 'manual', min_providers: 3, max_cells: 10_000, dp_required: true } })
    const back = verifyPeerEntryV2(JSON.parse(JSON.stringify(offered)), 'e', NOW)
    expect(back.datasets).toEqual(['trips', 'zones'])
    expect(back.policy?.dp_required).toBe(true)
  })

  it('refuses an altered entry: address, role, seq, exp, datasets or policy changed after signing', async () => {
    const p = await makeParty()
    const e = entry(p, { datasets: ['trips'], policy: { approval: 'auto', min_providers: 2, max_cells: 100, dp_required: false } })
    const alter: Array<(x: SignedPeerEntryV2) => void> = [
      (x) => { x.addrs = [`/ip4/10.9.9.9/tcp/41001/p2p/${p.peerId}`] },
      (x) => { x.role = 'buyer' },
      (x) => { x.seq += 1 },
      (x) => { x.exp += 1 },
      (x) => { x.datasets = ['trips', 'fares'] },
      (x) => { (x.policy as { min_providers: number }).min_providers = 1 },
      (x) => { delete x.policy }
    ]
    for (const f of alter) {
      const x = JSON.parse(JSON.stringify(e)) as SignedPeerEntryV2
      f(x)
      expect(checkOf(() => verifyPeerEntryV2(x, 'e', NOW))).toBe('signature')
    }
  })

  it('refuses an entry signed by another key than the one its peer ID names (wrong peer)', async () => {
    const [a, b] = [await makeParty(), await makeParty()]
    // b signs a body that claims a's peer ID and address
    const forged = { v: 2 as const, name: 'alpha', peerId: a.peerId, addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${a.peerId}`], role: 'provider' as const, seq: 1, exp: nowS + 60 }
    const sig = toHex(b.signer.sign(statementDigest(PEER_ENTRY_LABEL_V2, forged)))
    expect(checkOf(() => verifyPeerEntryV2({ ...forged, sig }, 'e', NOW))).toBe('signature')
    // an address leading to another peer
    expect(checkOf(() => verifyPeerEntryV2(entry(a, { addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${b.peerId}`] }), 'e', NOW))).toBe('addrs')
  })

  it('a v1 signature is not a v2 signature (the label carries the version)', async () => {
    const p = await makeParty()
    const v1 = signPeerEntry(p.signer, { name: 'alpha', addrs: [`/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`], role: 'provider' })
    expect(checkOf(() => verifyPeerEntryV2({ ...v1, v: 2, seq: 1, exp: nowS + 60 }, 'e', NOW))).toBe('signature')
    // and the same body under the v1 label does not verify either
    const b = { v: 2 as const, name: 'alpha', peerId: p.peerId, addrs: v1.addrs, role: 'provider' as const, seq: 1, exp: nowS + 60 }
    expect(checkOf(() => verifyPeerEntryV2({ ...b, sig: toHex(p.signer.sign(statementDigest(PEER_ENTRY_LABEL, b))) }, 'e', NOW))).toBe('signature')
  })

  it('expiry: refused past exp + skew, accepted within the skew; too long a validity is refused', async () => {
    const p = await makeParty()
    const skew = ENTRY_LIMITS.skewS
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { exp: nowS - skew - 1 }), 'e', NOW))).toBe('expired')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { exp: nowS - skew + 1 }), 'e', NOW))).toBe('accepted')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { exp: nowS + ENTRY_LIMITS.maxTtlS + skew }), 'e', NOW))).toBe('accepted')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { exp: nowS + ENTRY_LIMITS.maxTtlS + skew + 1 }), 'e', NOW))).toBe('ttl')
  })

  it('bounded sizes: addresses, datasets, address length, name, whole entry', async () => {
    const p = await makeParty()
    const addr = (i: number): string => `/ip4/127.0.0.${i + 1}/tcp/41001/p2p/${p.peerId}`
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: Array.from({ length: ENTRY_LIMITS.addrs }, (_, i) => addr(i)) }), 'e', NOW))).toBe('accepted')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: Array.from({ length: ENTRY_LIMITS.addrs + 1 }, (_, i) => addr(i)) }), 'e', NOW))).toBe('size')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { datasets: Array.from({ length: ENTRY_LIMITS.datasets + 1 }, (_, i) => `d${i}`) }), 'e', NOW))).toBe('size')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: [`/dns4/${'a'.repeat(ENTRY_LIMITS.addrChars)}.example/tcp/1/p2p/${p.peerId}`] }), 'e', NOW))).toBe('size')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { name: 'x'.repeat(65) }), 'e', NOW))).toBe('shape')
    expect(() => verifyPeerEntryV2(entry(p, { name: 'x'.repeat(65) }), 'e', NOW)).toThrow(/e\.name: name must be 1-64/)
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { datasets: ['ok', 'not ok'] }), 'e', NOW))).toBe('shape')
    const big = { ...entry(p), pad: 'x'.repeat(ENTRY_LIMITS.bytes) }
    expect(checkOf(() => verifyPeerEntryV2(big, 'e', NOW))).toBe('size')
    expect(checkOf(() => verifyPeerEntryV2({ ...entry(p), extra: 1 }, 'e', NOW))).toBe('shape')
    expect(checkOf(() => verifyPeerEntryV2({ ...entry(p), seq: 0 }, 'e', NOW))).toBe('shape')
    expect(checkOf(() => verifyPeerEntryV2({ ...entry(p), seq: 2 ** 53 }, 'e', NOW))).toBe('shape')
  })

  it('no unfit addresses: port 0 and unspecified hosts are refused; a relayed address is fine', async () => {
    const [p, relay] = [await makeParty(), await makeParty()]
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: [`/ip4/0.0.0.0/tcp/41001/p2p/${p.peerId}`] }), 'e', NOW))).toBe('addrs')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: [`/ip4/127.0.0.1/tcp/0/p2p/${p.peerId}`] }), 'e', NOW))).toBe('addrs')
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: ['/ip4/127.0.0.1/tcp/41001'] }), 'e', NOW))).toBe('addrs')
    const circuit = `/ip4/127.0.0.1/tcp/41000/p2p/${relay.peerId}/p2p-circuit/p2p/${p.peerId}`
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: [circuit] }), 'e', NOW))).toBe('accepted')
    // the relay's ID first does not make it the relay's entry
    expect(checkOf(() => verifyPeerEntryV2(entry(p, { addrs: [`/ip4/127.0.0.1/tcp/41000/p2p/${p.peerId}/p2p-circuit/p2p/${relay.peerId}`] }), 'e', NOW))).toBe('addrs')
  })

  it('peers import takes v2 (the first address: the signer orders them; expiry checked) and still takes v1', async () => {
    const [p, relay] = [await makeParty(), await makeParty()]
    const direct = `/ip4/127.0.0.1/tcp/41001/p2p/${p.peerId}`
    const circuit = `/ip4/127.0.0.1/tcp/41000/p2p/${relay.peerId}/p2p-circuit/p2p/${p.peerId}`
    const now = Math.floor(Date.now() / 1000)
    const v2 = signPeerEntryV2(p.signer, { name: 'alpha', addrs: [circuit, direct], role: 'provider', seq: 1, exp: now + 3600 })
    expect(parseImportItem(JSON.parse(JSON.stringify(v2)), 'f[0]')).toEqual({ name: 'alpha', addr: circuit, peerId: p.peerId, role: 'provider', signed: true })
    const old = signPeerEntryV2(p.signer, { name: 'alpha', addrs: [direct], role: 'provider', seq: 1, exp: now - 3600 })
    expect(() => parseImportItem(old, 'f[0]')).toThrow(/f\[0\]: alpha's entry expired at .*fresh `mpc-agent id --entry`/)
    const v1 = signPeerEntry(p.signer, { name: 'alpha', addrs: [direct], role: 'provider' })
    expect(parseImportItem(JSON.parse(JSON.stringify(v1)), 'f[0]')).toEqual({ name: 'alpha', addr: direct, peerId: p.peerId, role: 'provider', signed: true })
    expect(() => parseImportItem({ ...v1, v: 3 }, 'f[0]')).toThrow(/version must be 1 or 2/)
  })

  it('the golden vector (protocols/vectors/peer-entry-v2.json) is reproduced bit for bit and verifies', async () => {
    const g = JSON.parse(readFileSync(new URL('../../protocols/vectors/peer-entry-v2.json', import.meta.url), 'utf8')) as { label: string; statement: string; digest: string; entry: SignedPeerEntryV2 }
    expect(g.label).toBe(PEER_ENTRY_LABEL_V2)
    const seed = sha256(utf8('golden/peer-entry/identity/0'))
    const peerId = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed)).toString()
    const { sig, ...body } = g.entry
    const again = signPeerEntryV2(signerFromSeed(peerId, seed), { ...body })
    expect(again).toEqual(g.entry)
    expect(canonicalize(body)).toBe(g.statement)
    expect(toHex(statementDigest(PEER_ENTRY_LABEL_V2, body))).toBe(g.digest)
    // valid at a time before its expiry, refused after
    expect(verifyPeerEntryV2(g.entry, 'g', (g.entry.exp - 60) * 1000).sig).toBe(sig)
    expect(checkOf(() => verifyPeerEntryV2(g.entry, 'g', (g.entry.exp + ENTRY_LIMITS.skewS + 1) * 1000))).toBe('expired')
  })

  it('--ttl durations', () => {
    expect(parseTtl('90m')).toBe(5400)
    expect(parseTtl('7d')).toBe(7 * 86_400)
    expect(() => parseTtl('91d')).toThrow(/at most 90d/)
    expect(() => parseTtl('1w')).toThrow(/such as 12h or 7d/)
    expect(() => parseTtl('0h')).toThrow(/such as 12h or 7d/)
  })
})
