// relay.yaml and config.yaml `relays:` validation, and the relayed-address helpers (issue 18).
import { describe, it, expect } from 'vitest'
import { validateRelayConfig } from '../../src/relay/config.ts'
import { DEFAULT_RELAY_LIMITS } from '../../src/relay/limits.ts'
import { validateConfig, validatePeer } from '../../src/agent/config.ts'
import { parseImportItem } from '../../src/agent/peer-entry.ts'
import { isCircuit, relayOfAddr, runBytesPerLink } from '../../src/net/relays.ts'
import { peerIdOf } from '../../src/net/node.ts'

const RELAY = '12D3KooWExwD8ipdCi8D8uVYrpjevnCVfz2Dhi3xyzcZ2GG1jpgL'
const PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const CIRCUIT = `/ip4/198.18.0.2/tcp/41002/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`

describe('relay.yaml', () => {
  it('defaults the limits to values sized for runs, not circuit relay v2\'s 2 min / 128 KiB', () => {
    const c = validateRelayConfig({ name: 'hub', allow: [{ name: 'a', peerId: PEER }] })
    expect(c.limits).toEqual(DEFAULT_RELAY_LIMITS)
    expect(c.limits.reservations).toBeGreaterThanOrEqual(100)
    expect(c.limits.data_mib * 1024 * 1024).toBeGreaterThan(128 * 1024)
    expect(c.limits.duration_s).toBeGreaterThan(120)
  })
  it('refuses unknown keys, bad peer IDs, duplicates and non-positive limits with the offending place', () => {
    expect(() => validateRelayConfig({ name: 'hub', allow: [], extra: 1 })).toThrow(/unknown key "extra"/)
    expect(() => validateRelayConfig({ name: 'hub', allow: [{ name: 'a', peerId: 'nope' }] })).toThrow(/allow\[0\]\.peerId/)
    expect(() => validateRelayConfig({ name: 'hub', allow: [{ name: 'a', peerId: PEER }, { name: 'b', peerId: PEER }] })).toThrow(/appears twice/)
    expect(() => validateRelayConfig({ name: 'hub', limits: { data_mib: 0 } })).toThrow(/limits\.data_mib/)
    expect(() => validateRelayConfig({ name: 'hub', limits: { reservations: 1.5 } })).toThrow(/limits\.reservations/)
  })
})

describe('an agent\'s relays and relayed peer addresses', () => {
  it('config.yaml relays: needs the relay\'s own address with its peer ID', () => {
    const c = validateConfig({ name: 'a', relays: [{ name: 'hub', addr: `/ip4/198.18.0.2/tcp/41002/p2p/${RELAY}` }] })
    expect(c.relays?.[0]?.peerId).toBe(RELAY)
    expect(() => validateConfig({ name: 'a', relays: [{ name: 'hub', addr: '/ip4/198.18.0.2/tcp/41002' }] })).toThrow(/no \/p2p\//)
    expect(() => validateConfig({ name: 'a', relays: [{ name: 'hub', addr: CIRCUIT }] })).toThrow(/without \/p2p-circuit/)
  })
  it('the peer of a relayed address is its last /p2p/, not the relay', () => {
    expect(validatePeer({ name: 'b', addr: CIRCUIT, role: 'provider' }, 'p').peerId).toBe(PEER)
    expect(parseImportItem({ name: 'b', addr: CIRCUIT, role: 'provider' }, 'f').peerId).toBe(PEER)
    expect(peerIdOf(CIRCUIT)).toBe(PEER)
    expect(relayOfAddr(CIRCUIT)).toBe(RELAY)
    expect(isCircuit(CIRCUIT)).toBe(true)
    expect(relayOfAddr(`/ip4/10.0.0.1/tcp/1/p2p/${PEER}`)).toBe(null)
  })
  it('a run\'s bytes per link cover the vector (8 bytes per value + 4 canaries) and grow with N', () => {
    const L = 1_000_000
    const need = runBytesPerLink(L, 3)
    expect(need).toBeGreaterThan(BigInt((L + 4) * 8))
    expect(need).toBeLessThan(BigInt((L + 4) * 8) * 102n / 100n + 1024n * 1024n)
    expect(runBytesPerLink(L, 10)).toBeGreaterThan(need)
  })
})
