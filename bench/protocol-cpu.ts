// The protocol's own CPU per run (issue 20), without any network: every party of one run — the buyer and N
// providers — in this one process, the real negotiation (bench/negotiate.ts: createProposal, negotiate,
// respondToProposal) and the real masked sum (runBuyer, runProvider) over memory channels, one run after
// the other. What a run costs in CPU before libp2p, Noise, yamux and TCP add theirs, and how much of it is
// Ed25519: every sign and verify through node:crypto is counted (the one implementation src/crypto/sign.ts
// uses). On a machine whose cores every party shares, CPU / cores bounds the wall time from below: the
// issue-20 targets at small L are measured against this (bench/README.md "Issue 20: the protocol's own CPU").
//
// Standalone: node bench/protocol-cpu.ts [--n 5,10,20] [--l 1000] [--reps 20]   → one JSON document on stdout.
// From bench/run.ts: benchProtocolCpu() runs this file as its own process (the counters patch node:crypto).
import { spawnSync } from 'node:child_process'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ISSUE20_TARGET_S, median, round } from './report.ts'

export interface ProtocolCpuPhase {
  /** CPU (user + system) of this process per run, all parties together, median. */
  cpu_ms: number
  /** Ed25519 verifications and signatures per run (every party). */
  verifies: number
  signs: number
}

export interface ProtocolCpuRow {
  N: number
  L: number
  reps: number
  /** createProposal → every provider holds the verified certificate (providers verify the N ACCEPTs and the buyer's signature here). */
  negotiation: ProtocolCpuPhase
  /** runBuyer and every runProvider, start to result and receipts. */
  masked_sum: ProtocolCpuPhase
  /** One Ed25519 verification and one signature through node:crypto on this machine, µs (median of 2000). */
  verify_us: number
  sign_us: number
}

export interface ProtocolCpuDoc {
  date: string
  rows: ProtocolCpuRow[]
}

const r1 = (x: number): number => round(x, 1)

/** Run this file as a child process and return its document (or an error row). */
export function benchProtocolCpu(o: { Ns: number[]; L: number; reps: number; log: (l: string) => void }): ProtocolCpuDoc | { error: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--n', o.Ns.join(','), '--l', String(o.L), '--reps', String(o.reps)], { encoding: 'utf8', timeout: 600_000 })
  if (r.status !== 0) return { error: (r.stderr || `exit ${String(r.status)}`).trim().split('\n').slice(-1)[0] ?? 'failed' }
  const doc = JSON.parse(r.stdout) as ProtocolCpuDoc
  for (const x of doc.rows) o.log(`protocol CPU N=${x.N} L=${x.L}: negotiation ${x.negotiation.cpu_ms} ms, masked sum ${x.masked_sum.cpu_ms} ms per run (all ${x.N + 1} parties, no network); Ed25519 ${signatureMs(x)} ms of it`)
  return doc
}

/** Ed25519's share of a row, in ms per run: verifications and signatures of both phases at the measured costs. */
export function signatureMs(x: ProtocolCpuRow): number {
  const v = x.negotiation.verifies + x.masked_sum.verifies
  const s = x.negotiation.signs + x.masked_sum.signs
  return r1((v * x.verify_us + s * x.sign_us) / 1000)
}

/**
 * The CPU of the agreement → result window, all parties together, without network: the masked sum plus what the
 * providers do after the buyer holds the certificate — verify it (its N acceptances and the buyer's signature
 * each: N(N + 1) verifications). Divided by the cores every party shares, a floor for the window's wall time.
 */
export function windowCpuMs(x: ProtocolCpuRow): number {
  return r1(x.masked_sum.cpu_ms + (x.N * (x.N + 1) * x.verify_us) / 1000)
}

export function protocolCpuLines(doc: unknown, cores = 2): string[] {
  const d = doc as ProtocolCpuDoc | { error: string } | null | undefined
  if (!d) return []
  if ('error' in d) return ['', `Protocol CPU: failed: ${d.error}`]
  return ['', `The protocol's own CPU (bench/protocol-cpu.ts, ${d.date}: the buyer and every provider in one process, real negotiation and masked sum over memory channels, no network; per run, median of ${d.rows[0]?.reps ?? 0} runs; one Ed25519 verification ${d.rows[0]?.verify_us ?? 0} µs, one signature ${d.rows[0]?.sign_us ?? 0} µs here). The window's CPU is the masked sum plus the providers' check of the certificate (N(N + 1) verifications), which happen after the buyer holds it; divided by ${cores} cores, the least wall time the agreement → result window can take here before any network cost:`, '',
    `| N | L | negotiation CPU ms (verifies / signs) | masked sum CPU ms (verifies / signs) | Ed25519 ms of both | window CPU ms | window CPU / ${cores} cores, ms | issue-20 target ms |`, '|---|---|---|---|---|---|---|---|',
    ...d.rows.map((x) => {
      const target = ISSUE20_TARGET_S[`${x.N}/${x.L}`]
      return `| ${x.N} | ${x.L} | ${x.negotiation.cpu_ms} (${x.negotiation.verifies} / ${x.negotiation.signs}) | ${x.masked_sum.cpu_ms} (${x.masked_sum.verifies} / ${x.masked_sum.signs}) | ${signatureMs(x)} | ${windowCpuMs(x)} | ${r1(windowCpuMs(x) / cores)} | ${target === undefined ? '–' : target * 1000} |`
    })]
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '5,10,20' }, l: { type: 'string', default: '1000' }, reps: { type: 'string', default: '20' } } })
  // count every Ed25519 operation: src/crypto/sign.ts imports sign/verify from node:crypto by name, and
  // syncBuiltinESMExports makes those bindings see the counting wrappers (installed before anything signs)
  const require = createRequire(import.meta.url)
  const nodeCrypto = require('node:crypto') as typeof import('node:crypto')
  const counts = { verify: 0, sign: 0 }
  const verify0 = nodeCrypto.verify
  const sign0 = nodeCrypto.sign
  Object.assign(nodeCrypto, {
    verify: (...a: Parameters<typeof verify0>) => { counts.verify++; return verify0(...a) },
    sign: (...a: Parameters<typeof sign0>) => { counts.sign++; return sign0(...a) }
  })
  syncBuiltinESMExports()
  const { makeParties } = await import('../test/helpers/parties.ts')
  const { memoryChannelPair } = await import('../src/protocol/transport.ts')
  const { runProvider } = await import('../src/protocol/masked-sum-provider.ts')
  const { runBuyer } = await import('../src/protocol/masked-sum-buyer.ts')
  const { inspectCertificate } = await import('../src/agent/context.ts')
  const { benchQuery, benchVector } = await import('./workload.ts')
  const { buyerAgreement, providerAgreement, MemoryNonces } = await import('./negotiate.ts')
  type Channel = import('../src/protocol/transport.ts').Channel

  const cpu = (): number => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  // µs per Ed25519 operation through the same node:crypto calls
  const { generateKeyPairSync } = nodeCrypto
  const kp = generateKeyPairSync('ed25519')
  const msg = new Uint8Array(32).fill(7)
  const sig = nodeCrypto.sign(null, msg, kp.privateKey)
  const per = (f: () => void): number => {
    for (let i = 0; i < 200; i++) f()
    const t = performance.now()
    for (let i = 0; i < 2000; i++) f()
    return r1((performance.now() - t) / 2000 * 1000)
  }
  const verify_us = per(() => nodeCrypto.verify(null, msg, kp.publicKey, sig))
  const sign_us = per(() => nodeCrypto.sign(null, msg, kp.privateKey))

  const L = Number(values.l)
  const reps = Number(values.reps)
  const rows: ProtocolCpuRow[] = []
  for (const N of values.n.split(',').map(Number)) {
    const { buyer, providers } = await makeParties(N)
    const ids = providers.map((p) => p.peerId)
    const query = benchQuery(L, buyer.peerId, ids)
    const vectors = providers.map((_, i) => benchVector(L, i + 1))
    const stores = providers.map(() => new MemoryNonces()) // each provider its own, as each agent has
    const one = async (): Promise<{ neg: number[]; ms: number[] }> => {
      const pair = (): { b: Map<string, Channel>; p: Map<string, Channel> } => {
        const b = new Map<string, Channel>()
        const p = new Map<string, Channel>()
        for (const x of ids) {
          const [cb, cp] = memoryChannelPair(buyer.peerId, x)
          b.set(x, cb)
          p.set(x, cp)
        }
        return { b, p }
      }
      const negotiation = pair()
      const masked = pair()
      const mesh = new Map<string, Map<string, Channel>>(ids.map((x) => [x, new Map()]))
      for (let i = 0; i < N; i++) {
        for (let j = i + 1; j < N; j++) {
          const [a, b] = memoryChannelPair(ids[i] as string, ids[j] as string)
          mesh.get(ids[i] as string)?.set(ids[j] as string, a)
          mesh.get(ids[j] as string)?.set(ids[i] as string, b)
        }
      }
      const c0 = cpu()
      const v0 = counts.verify
      const s0 = counts.sign
      const [agreement, ...outcomes] = await Promise.all([
        buyerAgreement(buyer.signer, query, negotiation.b),
        ...providers.map((p, i) => providerAgreement(p.signer, negotiation.p.get(p.peerId) as Channel, undefined, stores[i]))
      ])
      const c1 = cpu()
      const v1 = counts.verify
      const s1 = counts.sign
      const results = await Promise.all([
        runBuyer({ signer: buyer.signer, params: agreement.params, channels: masked.b }),
        ...providers.map((p, i) => {
          const o = outcomes[i] as Awaited<ReturnType<typeof providerAgreement>>
          return runProvider({
            signer: p.signer, params: o.params, proposalDigest: o.proposal.digest, certificate: o.certificate, inspectCertificate,
            ephemeralPrivateKey: o.ephemeralPrivateKey, vector: (vectors[i] as BigUint64Array).slice(), buyer: masked.p.get(p.peerId) as Channel,
            peers: mesh.get(p.peerId) as Map<string, Channel>
          })
        })
      ])
      const c2 = cpu()
      const total = (results[0] as { total: BigUint64Array }).total
      for (let k = 0; k < L; k++) {
        if (total[k] !== vectors.reduce((a, v) => a + (v[k] as bigint), 0n)) throw new Error(`the run's total is wrong at cell ${k}`)
      }
      return { neg: [c1 - c0, v1 - v0, s1 - s0], ms: [c2 - c1, counts.verify - v1, counts.sign - s1] }
    }
    for (let i = 0; i < 5; i++) await one() // warm-up: JIT, key objects
    const runs: Array<{ neg: number[]; ms: number[] }> = []
    for (let i = 0; i < reps; i++) runs.push(await one())
    const phase = (k: 'neg' | 'ms'): ProtocolCpuPhase => ({
      cpu_ms: r1(median(runs.map((r) => r[k][0] as number))),
      verifies: median(runs.map((r) => r[k][1] as number)),
      signs: median(runs.map((r) => r[k][2] as number))
    })
    rows.push({ N, L, reps, negotiation: phase('neg'), masked_sum: phase('ms'), verify_us, sign_us })
  }
  process.stdout.write(JSON.stringify({ date: new Date().toISOString(), rows } satisfies ProtocolCpuDoc) + '\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
