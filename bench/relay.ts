// node bench/relay.ts [--n 3,5] [--l 100000] [--reps 2]   (root; iptables not needed: no NAT here)
// Relayed vs direct (issue 18): per N, a buyer and N providers each in its own network namespace on one
// segment, a relay in its own namespace; the same query run through the real CLI with the providers'
// addresses direct, then relayed (/p2p-circuit through the relay). Recorded per mode: the run's own
// timings from its provenance file (total_ms without process start, masked_sum_ms) and the bytes on the
// buyer's and the relay's interfaces. Writes bench/results/relay.json. A benchmark: it asserts nothing.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parse, stringify } from 'yaml'
import { createNatLab, type LabHost } from '../test/helpers/natlab.ts'
import { makeDataCluster, QUERY } from '../test/helpers/data-cluster.ts'
import { runCli, spawnCli, collect } from '../test/helpers/cli.ts'

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '3,5' }, l: { type: 'string', default: '100000' }, reps: { type: 'string', default: '2' } } })
const Ns = args.n.split(',').map(Number)
const L = Number(args.l)
const reps = Number(args.reps)

/** rx + tx bytes of every non-loopback interface in a namespace. */
function nsBytes(ns: string): number {
  const text = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/dev'], { encoding: 'utf8' })
  return text.split('\n').slice(2).filter((l) => l.includes(':') && !l.trim().startsWith('lo:')).reduce((sum, l) => {
    const f = l.split(':')[1]!.trim().split(/\s+/).map(Number)
    return sum + (f[0] ?? 0) + (f[8] ?? 0)
  }, 0)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

interface ModeResult { total_ms: number; masked_sum_ms: number; buyer_mb: number; relay_mb: number }

async function bench(N: number): Promise<{ N: number; L: number; direct: ModeResult; relayed: ModeResult }> {
  const lab = createNatLab(N + 2, [])
  const [relayH, buyerH, ...provH] = lab.public as [LabHost, LabHost, ...LabHost[]]
  const dc = await makeDataCluster(N, 200, [buyerH, ...provH])
  try {
    const relayHome = join(dc.dir, 'relay')
    const init = await runCli(['--home', relayHome, '--json', 'relay', 'init', '--name', 'hub', '--listen', `/ip4/${relayH.ip}/tcp/41002`])
    const relayId = (JSON.parse(init.stdout) as { peerId: string }).peerId
    const relayAddr = `/ip4/${relayH.ip}/tcp/41002/p2p/${relayId}`
    const rc = parse(readFileSync(join(relayHome, 'relay.yaml'), 'utf8')) as { allow: unknown[] }
    rc.allow = dc.cluster.agents.map((a) => ({ name: a.name, peerId: a.peerId }))
    writeFileSync(join(relayHome, 'relay.yaml'), stringify(rc))
    const ready = join(dc.dir, 'relay.ready')
    const relay = spawnCli(['--home', relayHome, 'relay', 'serve', '--ready-file', ready], { netns: relayH.ns })
    const relayDone = collect(relay, 30 * 60_000)
    while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 50))
    // zones × 24 hours × 2 slots ≈ L values per provider
    const zones = Math.max(1, Math.round(L / 48))
    const q = join(dc.dir, 'q.yaml')
    writeFileSync(q, QUERY(dc.providers).replace('max: 5 }', `max: ${zones} }`).replace(/timeouts:.*/, 'timeouts: { negotiate_s: 60, compute_s: 120, confirm_s: 60 }'))
    const setAddrs = (relayed: boolean): void => {
      for (const a of dc.cluster.agents) {
        const path = join(a.home, 'config.yaml')
        const c = parse(readFileSync(path, 'utf8')) as { relays?: unknown; peers: Array<{ name: string; addr: string }> }
        c.relays = [{ name: 'hub', addr: relayAddr }]
        for (const p of c.peers) {
          const peer = dc.cluster.byName(p.name)
          p.addr = relayed && peer.role === 'provider' ? `${relayAddr}/p2p-circuit/p2p/${peer.peerId}` : peer.addr
        }
        writeFileSync(path, stringify(c))
      }
    }
    const results: Record<string, ModeResult> = {}
    for (const mode of ['direct', 'relayed'] as const) {
      setAddrs(mode === 'relayed')
      for (const p of dc.providers) await dc.cluster.stop(p)
      for (const p of dc.providers) await dc.cluster.serve(p)
      for (const p of dc.providers) {
        const f = join(dc.cluster.byName(p).home, 'serve.json')
        while (!readFileSync(f, 'utf8').includes('/p2p-circuit')) await new Promise((r) => setTimeout(r, 100))
      }
      const runs: ModeResult[] = []
      for (let i = 0; i <= reps; i++) { // run 0 warms up
        const out = join(dc.dir, `${mode}-${i}.json`)
        const b0 = nsBytes(buyerH.ns)
        const r0 = nsBytes(relayH.ns)
        const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', out], { timeoutMs: 10 * 60_000 })
        if (r.code !== 0) throw new Error(`${mode} run failed: ${r.stderr}`)
        const t = (JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8')) as { timings: Record<string, number> }).timings
        if (i > 0) runs.push({ total_ms: t.total_ms!, masked_sum_ms: t.masked_sum_ms!, buyer_mb: (nsBytes(buyerH.ns) - b0) / 1e6, relay_mb: (nsBytes(relayH.ns) - r0) / 1e6 })
        rmSync(out, { force: true })
      }
      results[mode] = {
        total_ms: median(runs.map((x) => x.total_ms)), masked_sum_ms: median(runs.map((x) => x.masked_sum_ms)),
        buyer_mb: Math.round(median(runs.map((x) => x.buyer_mb)) * 10) / 10, relay_mb: Math.round(median(runs.map((x) => x.relay_mb)) * 10) / 10
      }
      process.stderr.write(`N=${N} L≈${zones * 48} ${mode}: ${JSON.stringify(results[mode])}\n`)
    }
    relay.kill('SIGTERM')
    await relayDone
    return { N, L: zones * 48, direct: results.direct!, relayed: results.relayed! }
  } finally {
    await dc.cluster.teardown()
    lab.teardown()
  }
}

const rows = []
for (const N of Ns) rows.push(await bench(N))
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/relay.json', import.meta.url), JSON.stringify({ when: new Date().toISOString(), reps, rows }, null, 1) + '\n')
for (const r of rows) {
  process.stdout.write(`N=${r.N} L=${r.L}: direct ${r.direct.total_ms} ms (masked sum ${r.direct.masked_sum_ms} ms, buyer ${r.direct.buyer_mb} MB) | relayed ${r.relayed.total_ms} ms (masked sum ${r.relayed.masked_sum_ms} ms, buyer ${r.relayed.buyer_mb} MB, relay ${r.relayed.relay_mb} MB)\n`)
}
