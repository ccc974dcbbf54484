// Issue 14 §2 through the real CLI, every agent a separate process on 127.0.0.1: a provider pins the
// provider set it served per data source, so the rename-differencing pair (Q over {p1..p4}, then Q
// with an aggregate renamed over {p2,p3,p4}) is refused at the second run with `differencing`, and
// so are the bypasses: a dataset alias to the same files, a second buyer identity, two concurrent
// proposals (never both pass). Clearing a pin is audited and then lets the run through.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { makeCluster, type Cluster } from '../helpers/agents.ts'
import { createAgentNode } from '../../src/net/node.ts'
import { NEGOTIATE_PROTOCOL } from '../../src/net/constants.ts'
import { channelFromStream } from '../../src/net/framing.ts'
import { signerFromSeed } from '../../src/crypto/sign.ts'
import { toHex } from '../../src/crypto/bytes.ts'
import { createProposal } from '../../src/protocol/negotiation.ts'
import { NEG, encodeMessage } from '../../src/protocol/negotiation-messages.ts'
import { loadQueryFile } from '../../src/query/parse.ts'
import { MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR } from '../../src/agent/limits.ts'
import { QUERY, policyYaml, trips, tripsCsv } from '../helpers/data-cluster.ts'

const PROVIDERS = ['p1', 'p2', 'p3', 'p4']
const COLUMNS = { zone: 'INTEGER', pickup_datetime: 'TIMESTAMP', fare: 'DOUBLE', license: 'VARCHAR' }

interface Entry { kind: string; proposal?: string; data: Record<string, unknown> }
const audit = (c: Cluster, name: string): Entry[] => !existsSync(join(c.byName(name).home, 'audit.jsonl')) ? [] :
  readFileSync(join(c.byName(name).home, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry)

describe('differencing pins (issue 14 §2)', () => {
  let c: Cluster
  let n = 0
  const queryFile = (providers: string[], o: { buyer?: string; dataset?: string; rename?: boolean } = {}): string => {
    let text = QUERY(providers).replace('buyer: city', `buyer: ${o.buyer ?? 'city'}`)
    if (o.dataset) text = text.replace('dataset: trips', `dataset: ${o.dataset}`)
    // Q': the same numbers under another name, one more allowed row: a "new template" to the old check
    if (o.rename) text = text.replace('{ name: fare,', '{ name: fare_total,').replace('max_rows_per_provider: 1000000', 'max_rows_per_provider: 1000001')
    const f = join(c.dir, `q${++n}.yaml`)
    writeFileSync(f, text)
    return f
  }
  const run = (buyer: string, file: string): ReturnType<Cluster['cli']> => c.cli(buyer, ['query', 'run', file, '--out', join(c.dir, `out${++n}.json`)], { timeoutMs: 90_000 })

  beforeAll(async () => {
    c = await makeCluster([{ name: 'city', role: 'buyer' }, { name: 'town', role: 'buyer' }, ...PROVIDERS.map((name) => ({ name, role: 'provider' as const }))])
    PROVIDERS.forEach((name, i) => {
      const home = c.byName(name).home
      writeFileSync(join(home, 'trips.csv'), tripsCsv(trips(2000 + i, 80)))
      const cfg = parse(readFileSync(join(home, 'config.yaml'), 'utf8')) as Record<string, unknown>
      // trips_alias: another name for the same file, which the operator even put in another pin group
      cfg.datasets = { trips: { path: 'trips.csv', format: 'csv', columns: COLUMNS }, trips_alias: { path: './trips.csv', format: 'csv', columns: COLUMNS } }
      writeFileSync(join(home, 'config.yaml'), stringify(cfg))
      const pol = parse(policyYaml(PROVIDERS.filter((p) => p !== name))) as Record<string, unknown>
      const trips_ = (pol.datasets as Record<string, unknown>).trips as Record<string, unknown>
      pol.datasets = { trips: trips_, trips_alias: { ...trips_, pin_group: 'alias' } }
      pol.buyers = ['city', 'town']
      pol.differencing_window_s = 3600
      writeFileSync(join(home, 'policy.yaml'), stringify(pol))
    })
    for (const p of PROVIDERS) await c.serve(p)
  }, 120_000)
  afterAll(async () => c?.teardown())

  let first = ''

  it('the rename pair: Q over {p1..p4} runs; Q′ (aggregate renamed) over {p2,p3,p4} is refused with differencing, naming the earlier run', async () => {
    const a = await run('city', queryFile(PROVIDERS))
    expect(a.code, a.stderr).toBe(0)
    first = audit(c, 'p2').filter((e) => e.kind === 'certificate').at(-1)?.proposal ?? ''
    expect(first).toMatch(/^[0-9a-f]{64}$/)
    const b = await run('city', queryFile(['p2', 'p3', 'p4'], { rename: true }))
    expect(b.code, b.stderr).toBe(3)
    expect(b.stderr).toContain('differencing_window_s')
    expect(b.stderr).toContain(first.slice(0, 16))
    for (const p of ['p2', 'p3', 'p4']) {
      const d = audit(c, p).filter((e) => e.kind === 'decision').at(-1)
      expect((d?.data.reasons as Array<{ code: string }>).map((r) => r.code)).toEqual(['differencing'])
    }
    // `policy check` answers as serve does, from the same store
    const check = await c.cli('p2', ['--json', 'policy', 'check', queryFile(['p2', 'p3', 'p4'], { rename: true }), '--buyer', 'city'])
    expect(check.code).toBe(3)
    expect((JSON.parse(check.stdout.trim().split('\n')[0] ?? '{}') as { reasons: Array<{ code: string }> }).reasons.map((r) => r.code)).toEqual(['differencing'])
  }, 120_000)

  it('bypass: a dataset alias to the same files (even in another pin_group) is refused', async () => {
    const r = await run('city', queryFile(['p2', 'p3', 'p4'], { dataset: 'trips_alias' }))
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain(first.slice(0, 16))
    // the buyer learns that it is the same data source, never where the provider keeps it
    expect(r.stderr).toContain('the same data source')
    expect(r.stderr).not.toMatch(/source:csv:|trips\.csv|\/tmp\//)
  }, 120_000)

  it('bypass: a second buyer identity is refused, and not told whose run or when', async () => {
    const r = await run('town', queryFile(['p2', 'p3', 'p4'], { buyer: 'town' }))
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain('differencing_window_s')
    expect(r.stderr).toContain('in a run for another buyer')
    // the other buyer's identity, its proposal and when it ran are not town's to learn
    expect(r.stderr).not.toContain(first.slice(0, 16))
    expect(r.stderr).not.toContain(c.byName('city').peerId)
    expect(r.stderr).not.toMatch(/\bcity\b/)
    expect(r.stderr).not.toMatch(/served [^;]*\d{4}-\d{2}-\d{2}T/)
  }, 120_000)

  it('pins clear is audited, then the refused run goes through', async () => {
    const list = await c.cli('p2', ['--json', 'pins', 'list'])
    expect(list.code, list.stderr).toBe(0)
    const pins = JSON.parse(list.stdout) as Array<{ proposal: string; group: string; providers: string[] }>
    expect(pins.map((p) => p.group).sort()).toEqual(['group:default', expect.stringMatching(/^source:csv:.*trips\.csv$/)])
    expect(pins.every((p) => p.proposal === first && p.providers.length === 4)).toBe(true)
    const none = await c.cli('p2', ['pins', 'clear'])
    expect(none.code).toBe(2) // no selector: nothing is cleared by accident
    for (const p of ['p2', 'p3', 'p4']) {
      const r = await c.cli(p, ['pins', 'clear', '--proposal', first.slice(0, 12)])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/cleared 2 pin/)
      const e = audit(c, p).at(-1)
      expect(e?.kind).toBe('pins_cleared')
      expect((e?.data.pins as Array<{ proposal: string }>).map((x) => x.proposal)).toEqual([first, first])
      expect((await c.cli(p, ['audit', 'verify'])).code).toBe(0)
    }
    const again = await run('city', queryFile(['p2', 'p3', 'p4'], { rename: true }))
    expect(again.code, again.stderr).toBe(0)
  }, 120_000)

  it('bypass: two concurrent proposals over different provider sets never both pass', async () => {
    for (const p of PROVIDERS) expect((await c.cli(p, ['pins', 'clear', '--all'])).code).toBe(0)
    const before = new Map(['p2', 'p3'].map((p) => [p, audit(c, p).length]))
    const [a, b] = await Promise.all([
      run('city', queryFile(['p1', 'p2', 'p3'])),
      run('town', queryFile(['p2', 'p3', 'p4'], { buyer: 'town' }))
    ])
    expect([a.code, b.code].filter((x) => x === 0).length).toBeLessThanOrEqual(1)
    for (const r of [a, b]) {
      if (r.code === 0) continue
      expect(r.code, r.stderr).toBe(3)
      expect(r.stderr).toContain('differencing_window_s')
    }
    // p2 and p3 each served at most one of the two sets
    for (const p of ['p2', 'p3']) {
      const certs = audit(c, p).slice(before.get(p)).filter((e) => e.kind === 'certificate')
      expect(new Set(certs.map((e) => JSON.stringify((e.data.providers as string[]).slice().sort()))).size).toBeLessThanOrEqual(1)
    }
  }, 120_000)

  it('a negotiation that ends while the provider still decides pins nothing: a buyer that aborts during a manual approval cannot pin the data to its set', async () => {
    for (const p of PROVIDERS) expect((await c.cli(p, ['pins', 'clear', '--all'])).code).toBe(0)
    const p1 = c.byName('p1')
    const policyFile = join(p1.home, 'policy.yaml')
    const saved = readFileSync(policyFile, 'utf8')
    writeFileSync(policyFile, stringify({ ...(parse(saved) as Record<string, unknown>), approval: 'manual' }))
    // town proposes {p1, p2, p3} to p1 over a stream it keeps open, then at once sends a frame p1 does not expect
    const town = c.byName('town')
    const key = privateKeyFromProtobuf(readFileSync(join(town.home, 'identity.key')))
    const node = await createAgentNode({ privateKey: key, listen: [], allow: new Set([p1.peerId]) })
    await node.start()
    try {
      const ids = (n: string): string | undefined => (c.agents.find((a) => a.name === n) ?? c.agents.find((a) => a.peerId === n))?.peerId
      const query = loadQueryFile(queryFile(['p1', 'p2', 'p3'], { buyer: 'town' }), town.peerId, ids)
      const proposal = createProposal(signerFromSeed(town.peerId, key.raw.subarray(0, 32)), query, { now: Date.now() })
      const digest = toHex(proposal.digest)
      const stream = await node.dialProtocol(multiaddr(p1.addr), NEGOTIATE_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      const ch = channelFromStream(stream, p1.peerId)
      await ch.send(encodeMessage(NEG.proposal, { proposal: proposal.proposal, sig: proposal.sig }))
      await new Promise((res) => setTimeout(res, 300)) // p1 now waits for its operator
      await ch.send(Uint8Array.from([0x09, 0x7b, 0x7d]))
      // p1's negotiation fails at once (it records the abort); the approval it waited for is withdrawn
      for (let i = 0; i < 50 && !audit(c, 'p1').some((e) => e.kind === 'abort' && e.proposal === digest); i++) await new Promise((res) => setTimeout(res, 100))
      expect(audit(c, 'p1').some((e) => e.kind === 'abort' && e.proposal === digest)).toBe(true)
      // the operator approves if it is still listed (it stayed listed, and approving it pinned the set, before the fix)
      const waiting = await c.cli('p1', ['--json', 'approve'])
      if (waiting.stdout.includes(digest)) await c.cli('p1', ['approve', digest.slice(0, 12)])
      const decided = (): boolean => audit(c, 'p1').some((e) => e.kind === 'decision' && e.proposal === digest)
      for (let i = 0; i < 100 && !decided(); i++) await new Promise((res) => setTimeout(res, 100))
      const pins = JSON.parse((await c.cli('p1', ['--json', 'pins', 'list'])).stdout) as Array<{ proposal: string }>
      expect(pins.filter((x) => x.proposal === digest)).toEqual([])
      const decision = audit(c, 'p1').filter((e) => e.kind === 'decision' && e.proposal === digest).at(-1)
      // recorded as not accepted: the approval wait ended with the negotiation (approval_timeout, "before the buyer gave up")
      expect(decision?.data.accept).toBe(false)
      expect((decision?.data.reasons as Array<{ code: string }>).map((r) => r.code)).toEqual([expect.stringMatching(/^(approval_timeout|negotiation_ended)$/)])
      stream.abort(new Error('done'))
    } finally {
      await node.stop()
      writeFileSync(policyFile, saved)
    }
    // and the next honest run over the pinned-nothing data goes through
    const ok = await run('city', queryFile(['p1', 'p2', 'p3']))
    expect(ok.code, ok.stderr).toBe(0)
  }, 120_000)

  it(`invalid certificates cost bounded disk: the audit log keeps each one's evidence as a hash, at most ${MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR} bundles per buyer per hour`, async () => {
    const p1 = c.byName('p1')
    const town = c.byName('town')
    const key = privateKeyFromProtobuf(readFileSync(join(town.home, 'identity.key')))
    const signer = signerFromSeed(town.peerId, key.raw.subarray(0, 32))
    const node = await createAgentNode({ privateKey: key, listen: [], allow: new Set([p1.peerId]) })
    await node.start()
    const ids = (n: string): string | undefined => (c.agents.find((a) => a.name === n) ?? c.agents.find((a) => a.peerId === n))?.peerId
    const query = loadQueryFile(queryFile(['p1', 'p2', 'p3'], { buyer: 'town' }), town.peerId, ids)
    const before = audit(c, 'p1').length
    const rounds = MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR + 2
    try {
      for (let i = 0; i < rounds; i++) {
        // town proposes, p1 accepts, town answers with a ~60 KB certificate that fails verification (the buyer's fault)
        const proposal = createProposal(signer, query, { now: Date.now() })
        const stream = await node.dialProtocol(multiaddr(p1.addr), NEGOTIATE_PROTOCOL, { signal: AbortSignal.timeout(5000) })
        const ch = channelFromStream(stream, p1.peerId)
        await ch.send(encodeMessage(NEG.proposal, { proposal: proposal.proposal, sig: proposal.sig }))
        expect((await ch.receive({ signal: AbortSignal.timeout(10_000) }))[0]).toBe(NEG.accept)
        const bogus = { body: { proposal: { proposal: proposal.proposal, sig: proposal.sig }, acceptances: Array.from({ length: 60 }, () => 'x'.repeat(1000)) }, buyer_sig: '00'.repeat(64) }
        await ch.send(encodeMessage(NEG.certificate, bogus))
        const digest = toHex(proposal.digest)
        for (let k = 0; k < 50 && !audit(c, 'p1').some((e) => e.kind === 'abort' && e.proposal === digest); k++) await new Promise((res) => setTimeout(res, 100))
        stream.abort(new Error('done'))
      }
    } finally {
      await node.stop()
    }
    const lines = readFileSync(join(p1.home, 'audit.jsonl'), 'utf8').trim().split('\n').slice(before)
    const aborts = lines.filter((l) => l.includes('"kind":"abort"'))
    expect(aborts.length).toBe(rounds)
    // each entry names the evidence (kind, size, hash) instead of holding it
    for (const l of aborts) {
      expect(l.length).toBeLessThan(8_000)
      const e = JSON.parse(l) as Entry
      expect(e.data.evidence).toMatchObject({ kind: 'certificate', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: expect.any(Number) })
      expect((e.data.evidence as { bytes: number }).bytes).toBeGreaterThan(60_000)
    }
    // bundles: the hour's allowance, then none, each such abort saying so
    const kept = aborts.map((l) => JSON.parse(l) as Entry).filter((e) => typeof e.data.evidence_file === 'string')
    const notKept = aborts.map((l) => JSON.parse(l) as Entry).filter((e) => typeof e.data.evidence_not_kept === 'string')
    expect(kept.length).toBeLessThanOrEqual(MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR)
    expect(notKept.length).toBeGreaterThanOrEqual(2)
    expect(kept.length + notKept.length).toBe(rounds)
    // a kept bundle still verifies offline
    const v = await c.cli('p1', ['evidence', 'verify', kept[0]?.data.evidence_file as string])
    expect([0, 8]).toContain(v.code)
  }, 180_000)
})
