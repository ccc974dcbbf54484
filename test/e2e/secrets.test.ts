// Issue #8, secrets: a full run with distinctive sentinel values in every provider's data; then every
// log, audit file, output, provenance file and every process's stdout/stderr is searched. No raw value
// and no provider's unmasked vector value appears anywhere except the buyer's final totals. Keys 0600.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, type DataCluster } from '../helpers/data-cluster.ts'
import type { CliResult } from '../helpers/cli.ts'

// per provider: a raw fare no other provider has, a marker string in a column nobody queries
const FARES = [41.2345679, 43.8765432, 47.1928374]
const MARKERS = ['SENTINEL-ALPHA-7731', 'SENTINEL-BRAVO-1942', 'SENTINEL-CHARLIE-5088']

function walk(dir: string, skip: (f: string) => boolean): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...walk(p, skip))
    else if (!skip(p)) out.push(p)
  }
  return out
}

function encodings(v: bigint): string[] {
  const le = Buffer.alloc(8)
  le.writeBigUInt64LE(v)
  return [v.toString(), le.toString('hex'), Buffer.from(le).reverse().toString('hex'), le.toString('base64')]
}

describe('secrets never leave a provider', () => {
  let dc: DataCluster
  const serveOutput: CliResult[] = []
  let run: CliResult
  beforeAll(async () => {
    dc = await makeDataCluster(3, 50)
    dc.providers.forEach((p, i) => {
      const home = dc.cluster.byName(p).home
      // 7 trips at zone 3, 13:xx, each with this provider's distinctive fare; the license column carries the marker
      const rows = Array.from({ length: 7 }, (_, k) => `3,2024-03-0${1 + (k % 3)} 13:${10 + k}:00,${FARES[i]},${MARKERS[i]}`)
      writeFileSync(join(home, 'trips.csv'), 'zone,pickup_datetime,fare,license\n' + rows.join('\n') + '\n')
    })
    for (const p of dc.providers) await dc.cluster.serve(p)
    run = await dc.cluster.cli('city', ['--verbose', 'query', 'run', dc.queryFile, '--out', join(dc.dir, 'out.json')])
    for (const p of dc.providers) serveOutput.push((await dc.cluster.stop(p)) as CliResult)
  }, 120_000)
  afterAll(async () => dc?.cluster.teardown())

  it('the run succeeded and the buyer got the totals', () => {
    expect(run.code, run.stderr).toBe(0)
    const doc = JSON.parse(readFileSync(join(dc.dir, 'out.json'), 'utf8')) as { cells: Array<{ key: string[]; values: Record<string, number> }> }
    const cell = doc.cells.find((c) => c.key.join('|') === '3|13')
    expect(cell?.values.pickups).toBe(21)
  })

  it('no sentinel, raw value or unmasked vector value appears in any file, log or output', () => {
    // each provider's unmasked vector value for that cell: 7 × round(fare × 100)
    const secrets: string[] = [...MARKERS]
    FARES.forEach((f) => {
      secrets.push(String(f))
      for (const e of encodings(7n * BigInt(Math.round(f * 100)))) secrets.push(e)
    })
    const files = walk(dc.dir, (f) => f.endsWith('trips.csv') || f.endsWith('.yaml'))
    expect(files.some((f) => f.endsWith('audit.jsonl'))).toBe(true)
    expect(files.some((f) => f.endsWith('agent.log'))).toBe(true)
    const haystacks: Array<[string, string]> = [
      ...files.map((f): [string, string] => [f, readFileSync(f).toString('latin1') + readFileSync(f).toString('base64')]),
      ['query run stdout+stderr', run.stdout + run.stderr],
      ...serveOutput.map((r, i): [string, string] => [`serve ${i} stdout+stderr`, r.stdout + r.stderr])
    ]
    // a short decimal (an unmasked cell value, 5 digits) counts only as a number of its own: inside a hex
    // hash or signature it turns up by chance (~1 % per value in the buyer's audit log), which once failed CI
    const found = (text: string, s: string): boolean => /^\d+$/.test(s) ? new RegExp(`(?<![0-9A-Za-z])${s}(?![0-9A-Za-z])`).test(text) : text.includes(s)
    for (const [where, text] of haystacks) {
      for (const s of secrets) expect(found(text, s), `${s} found in ${where}`).toBe(false)
    }
    // the check still catches a value written as a number (as in JSON), and ignores one inside a hex string
    expect(found('{"v":30716,"w":1}', '30716')).toBe(true)
    expect(found('"sig":"ab30716cd"', '30716')).toBe(false)
    // positive control: the search does find what is legitimately there (the buyer's total)
    const total = 7n * FARES.reduce((a, f) => a + BigInt(Math.round(f * 100)), 0n)
    expect(readFileSync(join(dc.dir, 'out.json'), 'utf8')).toContain(String(Number(total) / 100))
  })

  it('key files stay 0600', () => {
    for (const a of dc.cluster.agents) expect(statSync(join(a.home, 'identity.key')).mode & 0o777).toBe(0o600)
  })
})
