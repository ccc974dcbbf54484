// npm run soak [-- --runs 500 --providers 4]: consecutive runs across 1 buyer + N providers (real
// processes on 127.0.0.1), reporting failures and the providers' RSS growth. Not part of npm test.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { makeDataCluster } from '../test/helpers/data-cluster.ts'
import { MAX_PROPOSALS_PER_PEER_PER_MINUTE } from '../src/agent/limits.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '500' }, providers: { type: 'string', default: '4' } } })
const runs = Number(values.runs)
const dc = await makeDataCluster(Number(values.providers), 500)
// the test policy allows 100 certified runs per buyer a day (SECURITY.md); a soak needs more
for (const p of dc.providers) {
  const f = join(dc.cluster.byName(p).home, 'policy.yaml')
  writeFileSync(f, readFileSync(f, 'utf8').replace(/max_runs_per_buyer_per_day: \d+/, `max_runs_per_buyer_per_day: ${runs + 10}`))
}
// paced at 28 runs a minute the soak outlives the harness's 10-minute default for a serving agent
for (const p of dc.providers) await dc.cluster.serve(p, [], { lifetimeMs: (runs / 20 + 10) * 60_000 })
const rss = (): number[] => dc.providers.map((p) => {
  const pid = dc.cluster.byName(p).proc?.pid
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  } catch {
    return 0
  }
})
const start = rss()
const failures: string[] = []
const t0 = Date.now()
// every run goes to the same provider set (the differencing pins allow that); each gets its own id for readable logs
const base = readFileSync(dc.queryFile, 'utf8')
// a legitimate buyer stays under each provider's proposal rate limit (SECURITY.md): runs now take
// well under 2 s, so unpaced they would be refused after 30 a minute
const started: number[] = []
const perMinute = MAX_PROPOSALS_PER_PEER_PER_MINUTE - 2
for (let i = 0; i < runs; i++) {
  while (started.length >= perMinute && Date.now() - (started[started.length - perMinute] as number) < 61_000) {
    await new Promise((r) => setTimeout(r, 250))
  }
  started.push(Date.now())
  const q = join(dc.dir, 'soak.yaml')
  writeFileSync(q, base.replace('id: zones-by-hour', `id: soak-${i}`).replace('max_rows_per_provider: 1000000', `max_rows_per_provider: ${1_000_000 + i}`))
  const r = await dc.cluster.cli('city', ['query', 'run', q, '--out', join(dc.dir, 'soak.json')])
  if (r.code !== 0) failures.push(`run ${i}: exit ${String(r.code)}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`)
  if ((i + 1) % 25 === 0) process.stderr.write(`${i + 1}/${runs} runs, ${failures.length} failures, provider RSS kB ${rss().join(' ')}\n`)
}
const end = rss()
const report = { runs, failures: failures.length, seconds: (Date.now() - t0) / 1000, rss_kb_start: start, rss_kb_end: end, rss_growth_kb: end.map((e, i) => e - (start[i] ?? 0)), first_failures: failures.slice(0, 10) }
const out = join(mkdtempSync(join(tmpdir(), 'mpc-soak-')), 'soak.json')
writeFileSync(out, JSON.stringify(report, null, 1))
process.stdout.write(JSON.stringify(report, null, 1) + `\nwritten to ${out}\n`)
await dc.cluster.teardown()
process.exit(failures.length ? 1 : 0)
