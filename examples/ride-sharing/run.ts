// npm run example:ride-sharing [-- --companies K --trips N --seed S --workdir DIR --keep --zones FILE --tlc FILE --source parquet|postgres]
// --source postgres: every company's trips in a table of the database at $MPC_EXAMPLE_PG_URL (examples/ride-sharing/postgres.ts).
// The study end to end on 127.0.0.1: an agent home per company and one for the city, synthetic
// trips (or a real TLC file split by company), every company's `mpc-agent serve` as its own
// process, the city's three queries through the real `mpc-agent query run`, each result checked
// against plaintext totals computed directly from the files, a heat map, report.html.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { parse, stringify } from 'yaml'
import { generate, plan, splitTlc, COMPANY_NAMES, type Company } from './generate.ts'
import { compare, plaintextTotals, trueDistinctVehicles, verifyNoisy, type NoisyVerdict, type ResultDoc } from './verify.ts'
import { loadZones, terminalHeatmap } from './heatmap.ts'
import { writeReport } from './report.ts'
import { listenPort } from './ports.ts'
import { loadIntoPostgres } from './postgres.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const BIN = fileURLToPath(new URL('../../bin/mpc-agent.js', import.meta.url))
const QUERIES = ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour', 'pickups-zone-hour-dp']

const { values: o } = parseArgs({
  options: {
    companies: { type: 'string', default: '3' },
    trips: { type: 'string', default: '200000' },
    seed: { type: 'string', default: '7' },
    workdir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    zones: { type: 'string' },
    tlc: { type: 'string' },
    source: { type: 'string', default: 'parquet' },
    help: { type: 'boolean', default: false }
  }
})

if (o.help) {
  process.stdout.write(readFileSync(join(HERE, 'README.md'), 'utf8'))
  process.exit(0)
}

const children = new Set<ChildProcess>()
let stopping = false

function fail(msg: string): never {
  if (!stopping) process.stderr.write(`example:ride-sharing: ${msg}\n`) // after Ctrl-C: the one line is the SIGINT one
  process.exitCode = 1
  throw new Error(msg)
}

function cli(home: string, args: string[], timeoutMs = 600_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, '--home', home, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(p)
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('exit', (code) => {
      clearTimeout(t)
      children.delete(p)
      res({ code, stdout, stderr })
    })
  })
}

async function stopAll(): Promise<void> {
  stopping = true
  const waits = [...children].map((c) => new Promise<void>((r) => {
    if (c.exitCode != null || c.signalCode != null) return r()
    const t = setTimeout(() => c.kill('SIGKILL'), 5000)
    c.once('exit', () => {
      clearTimeout(t)
      r()
    })
    c.kill('SIGTERM')
  }))
  await Promise.all(waits)
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`example:ride-sharing: ${sig}, stopping the agents\n`)
    void stopAll().then(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  })
}

async function main(): Promise<void> {
  const k = Number(o.companies)
  const trips = Number(o.trips)
  const seed = Number(o.seed)
  if (!o.tlc && (!Number.isInteger(k) || k < 3 || k > 20)) fail('--companies must be 3..20: with fewer than 3 providers each one could learn another\'s data from the total')
  if (o.source !== 'parquet' && o.source !== 'postgres') fail('--source must be parquet or postgres')
  if (o.source === 'postgres' && !process.env.MPC_EXAMPLE_PG_URL) fail('--source postgres needs MPC_EXAMPLE_PG_URL: the connection string of a database where the example may create tables')
  if (!Number.isInteger(trips) || trips < 100) fail('--trips must be an integer ≥ 100 (trips per company, on average)')
  const work = resolve(o.workdir ?? mkdtempSync(join(tmpdir(), 'mpc-ride-sharing-')))
  mkdirSync(work, { recursive: true })
  const log = (s: string): void => void process.stdout.write(s + '\n')
  log(`work dir: ${work}`)

  // 1. data: synthetic, or a real TLC HVFHV file split by company
  const dataDir = join(work, 'data')
  let companies: Array<Pick<Company, 'name' | 'file' | 'trips' | 'license'>>
  const t0 = performance.now()
  if (o.tlc) {
    const split = await splitTlc(resolve(o.tlc), dataDir)
    if (split.companies.length < 3) fail(`${o.tlc} has ${split.companies.length} companies; the study needs at least 3`)
    companies = split.companies.slice(0, 20).map((c, i) => ({ name: COMPANY_NAMES[i] as string, file: c.file, trips: c.trips, license: c.license }))
    log(`split ${o.tlc}: ${companies.map((c) => `${c.license} → ${c.name} (${c.trips} trips)`).join(', ')}; ${split.dropped} trips outside zones 1-263 dropped`)
  } else {
    const p = plan(k, trips, dataDir)
    await generate(p, seed)
    companies = p
    log(`generated ${p.reduce((a, c) => a + c.trips, 0)} trips for ${k} companies (seed ${seed}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  const names = companies.map((c) => c.name)
  if (o.source === 'postgres') {
    const t1 = performance.now()
    for (const c of companies) await loadIntoPostgres(process.env.MPC_EXAMPLE_PG_URL as string, c.file, `trips_${c.name}`)
    log(`loaded every company's trips into PostgreSQL (tables trips_<company>) in ${((performance.now() - t1) / 1000).toFixed(1)} s`)
  }

  // 2. agent homes: the city and one per company, introduced to each other
  const homes = new Map<string, string>()
  const peers: Array<{ name: string; addr: string; role: string }> = []
  for (const name of ['city', ...names]) homes.set(name, join(work, 'homes', name))
  // each step in parallel over the homes: every CLI call is its own process (and a second of start-up)
  const infos = await Promise.all([...homes].map(async ([name, home]) => {
    if (!existsSync(join(home, 'identity.key'))) {
      const port = await listenPort()
      const r = await cli(home, ['init', '--name', name, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--json'])
      if (r.code !== 0) fail(`init ${name}: ${r.stderr.trim()}`)
      return { name, info: JSON.parse(r.stdout) as { peerId: string } } // init --json prints {peerId, home}
    }
    const id = await cli(home, ['id', '--json']) // a home kept from an earlier run (--workdir DIR)
    if (id.code !== 0) fail(`id ${name}: ${id.stderr.trim()}`)
    return { name, info: JSON.parse(id.stdout) as { peerId: string } }
  }))
  for (const { name, info } of infos) {
    const home = homes.get(name) as string
    const listen = (parse(readFileSync(join(home, 'config.yaml'), 'utf8')) as { listen: string[] }).listen[0] as string
    peers.push({ name, addr: `${listen}/p2p/${info.peerId}`, role: name === 'city' ? 'buyer' : 'provider' })
  }
  const directory = join(work, 'peers.yaml')
  writeFileSync(directory, stringify(peers))
  await Promise.all([...homes].map(async ([name, home]) => {
    const r = await cli(home, ['peers', 'import', directory])
    if (r.code !== 0) fail(`peers import ${name}: ${r.stderr.trim()}`)
  }))
  const template = readFileSync(join(HERE, 'policy.yaml'), 'utf8')
  for (const c of companies) {
    const home = homes.get(c.name) as string
    const cfgPath = join(home, 'config.yaml')
    const cfg = parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>
    cfg.datasets = { trips: o.source === 'postgres' ? { format: 'postgres', table: `trips_${c.name}`, connection_env: 'MPC_EXAMPLE_PG_URL' } : { path: c.file, format: 'parquet' } }
    writeFileSync(cfgPath, stringify(cfg))
    const others = names.filter((n) => n !== c.name)
    writeFileSync(join(home, 'policy.yaml'), template.replaceAll('__OTHERS__', others.join(', ')).replaceAll('__MIN_TRUSTED__', String(Math.min(2, others.length))))
  }
  const queryDir = join(work, 'queries')
  mkdirSync(queryDir, { recursive: true })
  const queries = QUERIES.filter((q) => !(o.tlc && q === 'vehicles-rush-hour')) // real files have no vehicle identifier
  if (o.tlc) log('note: TLC files have no vehicle identifier: the distinct-vehicles query (vehicles-rush-hour) is skipped')
  for (const q of queries) {
    writeFileSync(join(queryDir, `${q}.yaml`), readFileSync(join(HERE, 'queries', `${q}.yaml`), 'utf8').replace('[alpha, beta, gamma]', `[${names.join(', ')}]`))
  }

  // 3. every company serves, as its own process (started together, each waited for by its ready file)
  await Promise.all(companies.map(async (c) => {
    const home = homes.get(c.name) as string
    const ready = join(work, `${c.name}.ready.json`)
    rmSync(ready, { force: true })
    const p = spawn(process.execPath, [BIN, '--home', home, 'serve', '--ready-file', ready], { stdio: ['ignore', 'ignore', 'pipe'] })
    children.add(p)
    let err = ''
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    p.on('exit', (code) => {
      children.delete(p)
      if (!stopping) process.stderr.write(`example:ride-sharing: ${c.name}'s agent exited (${String(code)}): ${err.trim().split('\n').at(-1) ?? ''}\n`)
    })
    const until = Date.now() + 30_000
    while (!existsSync(ready)) {
      if (p.exitCode != null) fail(`${c.name}'s agent did not start: ${err.trim()}`)
      if (Date.now() > until) fail(`${c.name}'s agent not ready after 30 s`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }))
  log(`${companies.length} company agents serving: ${names.join(', ')}`)

  // 4. the city's queries, through the real CLI; 5. verified against the plaintext
  const results: ResultDoc[] = []
  const verification: Array<{ query: string; ok: boolean; mismatches: string[]; noisy?: NoisyVerdict }> = []
  const timings: Array<{ query: string; seconds: number }> = []
  const agreements: Array<{ company: string; peerId: string; query: string; session: string; signature: string }> = []
  const certificates: Array<{ query: string; certificate: unknown }> = []
  const files = companies.map((c) => c.file)
  for (const q of queries) {
    const out = join(work, `${q}.json`)
    const t = performance.now()
    const r = await cli(homes.get('city') as string, ['query', 'run', join(queryDir, `${q}.yaml`), '--out', out, '--format', 'json', '--timeout', '600'])
    if (r.code !== 0) fail(`query ${q} failed (exit ${String(r.code)}): ${r.stderr.trim()}`)
    timings.push({ query: q, seconds: (performance.now() - t) / 1000 })
    const doc = JSON.parse(readFileSync(out, 'utf8')) as ResultDoc
    results.push(doc)
    if (doc.privacy) {
      // a noisy result cannot equal the plaintext: check instead that the exact totals fall inside the reported 95%
      // intervals as often as the noise says they should (binomial bound at 1e-6; fails with noise off or doubled)
      const v = verifyNoisy(doc, await plaintextTotals(files, q), 'pickups')
      verification.push({ query: q, ok: v.ok, mismatches: v.ok ? [] : [`coverage ${v.hits}/${v.cells}`], noisy: v })
      if (!v.ok) fail(`${q}: the exact totals lie inside the reported 95% intervals in ${v.hits} of ${v.cells} cells, inconsistent with the intervals' coverage ${v.coverage.toFixed(4)} (binomial tails ${v.lower.toExponential(2)}, ${v.upper.toExponential(2)})`)
      log(`verified (noisy, epsilon ${doc.privacy.epsilon}): ${q}: exact total inside the 95% interval in ${v.hits} of ${v.cells} cells (expected ~${(v.coverage * v.cells).toFixed(0)}); error per cell: mean |error| ${v.meanAbsError.toFixed(2)}, max ${v.maxAbsError}, noise std ${doc.privacy.aggregates.pickups?.std.toFixed(2)}`)
      const prov = JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8')) as { session: string; certificate: { body: { acceptances: Array<{ provider: string; sig: string }> } } }
      certificates.push({ query: q, certificate: prov.certificate })
      continue
    }
    const mismatches = compare(doc, await plaintextTotals(files, q))
    verification.push({ query: q, ok: mismatches.length === 0, mismatches })
    if (mismatches.length) {
      process.stderr.write(mismatches.slice(0, 20).join('\n') + '\n')
      fail(`${q}: the result differs from the plaintext totals in ${mismatches.length} cells`)
    }
    log(`verified: ${q} (${doc.cells.length} cells, ${(timings.at(-1) as { seconds: number }).seconds.toFixed(2)} s)`)
    const prov = JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8')) as { session: string; certificate: { body: { acceptances: Array<{ provider: string; sig: string }> } } }
    certificates.push({ query: q, certificate: prov.certificate })
    for (const a of prov.certificate.body.acceptances) {
      agreements.push({ company: peers.find((p) => p.addr.endsWith(a.provider))?.name ?? a.provider, peerId: a.provider, query: q, session: prov.session, signature: a.sig })
    }
  }
  await stopAll()

  // 6. the heat map and the report
  const zones = loadZones(o.zones)
  const pick = results.find((d) => d.query.id === 'pickups-zone-hour')
  if (pick) log('\n' + terminalHeatmap(pick, zones, { color: process.stdout.isTTY === true }) + '\n')
  const veh = results.find((d) => d.query.id === 'vehicles-rush-hour')
  let trueVehicles: Map<string, number> | undefined
  if (veh) {
    trueVehicles = await trueDistinctVehicles(files)
    const summed = veh.cells.reduce((a, c) => a + Number(c.values.vehicles), 0)
    const truth = [...trueVehicles.values()].reduce((a, b) => a + b, 0)
    log(`vehicles in service per rush hour: ${veh.cells.map((c) => `${c.key[0]}h ${String(c.values.vehicles)}`).join(', ')}`)
    log(`note: summed per-company distinct counts (${summed}) double-count drivers who work for several companies (${truth} distinct over all companies here)`)
  }
  const { html, svg } = writeReport(work, { results, verification, agreements, certificates, timings, companies, trueVehicles, zones })
  log(`wrote ${html} and ${svg}`)
  if (!o.keep) {
    rmSync(join(work, 'homes'), { recursive: true, force: true })
    rmSync(dataDir, { recursive: true, force: true })
  } else log(`kept the agent homes in ${join(work, 'homes')} and the data in ${dataDir}: see examples/ride-sharing/README.md to run more queries by hand`)
  log('all results verified')
}

try {
  await main()
} catch (e) {
  if (!process.exitCode) process.stderr.write(`example:ride-sharing: ${(e as Error).message}\n`)
  process.exitCode = 1
} finally {
  await stopAll()
}
