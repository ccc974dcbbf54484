// Issue #6: the study reproduces from one command, end to end through the real CLI: agents as
// processes, three queries verified against independent SQL, report written, every child stopped.
// (The pieces are tested on their own in generate/verify/report.test.ts.)
import { describe, expect, it, beforeAll, afterAll } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { verifyResult, type ResultDoc } from '../../examples/ride-sharing/verify.ts'
import { heatmapSvg } from '../../examples/ride-sharing/heatmap.ts'
import { runCli } from '../helpers/cli.ts'

const RUN = fileURLToPath(new URL('../../examples/ride-sharing/run.ts', import.meta.url))
const ZONES = fileURLToPath(new URL('../../../shared/data/taxi_zone_lookup.csv', import.meta.url))

/** Live processes whose command line mentions `needle` (the agents this run started, if any survived). */
function processesMentioning(needle: string): string[] {
  const out: string[] = []
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(needle) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd}`)
    } catch { /* gone */ }
  }
  return out
}

describe('ride-sharing example', () => {
  const work = mkdtempSync(join(tmpdir(), 'mpc-rs-test-'))
  let stdout = ''
  beforeAll(async () => {
    const r = spawnSync(process.execPath, [RUN, '--trips', '3000', '--workdir', work, '--keep', ...(existsSync(ZONES) ? ['--zones', ZONES] : [])], { encoding: 'utf8', timeout: 240_000 })
    stdout = r.stdout
    if (r.status !== 0) throw new Error(`example failed (${String(r.status)}): ${r.stderr}\n${r.stdout}`)
  }, 300_000)
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('leaves no agent process behind', () => {
    expect(processesMentioning(join(work, 'homes'))).toEqual([])
  })

  it('runs end to end through the real CLI and verifies every query', () => {
    for (const q of ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour']) expect(stdout).toContain(`verified: ${q}`)
    expect(stdout).toMatch(/verified \(noisy, epsilon 1\): pickups-zone-hour-dp/)
    expect(stdout).toMatch(/double-count drivers/)
    expect(existsSync(join(work, 'report.html'))).toBe(true)
    expect(existsSync(join(work, 'heatmap.svg'))).toBe(true)
  })

  it('--keep leaves working agent homes: a query can be run again by hand', async () => {
    const r = await runCli(['--home', join(work, 'homes', 'alpha'), 'policy', 'check', join(work, 'queries', 'pickups-zone-hour.yaml'), '--buyer', 'city'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('accept')
  })

  it('the providers\' policies refuse grouping by a firm-constant column (exit 3)', async () => {
    const q = readFileSync(join(work, 'queries', 'pickups-zone-hour.yaml'), 'utf8').replace('filter: "dow(pickup_datetime) BETWEEN 1 AND 5"', 'filter: "hvfhs_license_num = \'HV0003\'"')
    const file = join(work, 'queries', 'license.yaml')
    ;(await import('node:fs')).writeFileSync(file, q)
    const r = await runCli(['--home', join(work, 'homes', 'alpha'), 'policy', 'check', file, '--buyer', 'city'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/hvfhs_license_num/)
  })

  it('the verifier is not a rubber stamp: one changed cell of the real result is reported', async () => {
    const files = ['alpha', 'beta', 'gamma'].map((c) => join(work, 'data', `${c}.parquet`))
    for (const q of ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour']) {
      const doc = JSON.parse(readFileSync(join(work, `${q}.json`), 'utf8')) as ResultDoc
      expect(await verifyResult(files, join(work, 'queries', `${q}.yaml`), doc)).toEqual([])
      const cell = doc.cells.find((c) => Object.values(c.values).some((v) => Number(v) > 0)) as ResultDoc['cells'][number]
      const name = Object.keys(cell.values).find((k) => Number(cell.values[k]) > 0) as string
      cell.values[name] = Number(cell.values[name]) + 1
      expect(await verifyResult(files, q, doc)).toHaveLength(1)
    }
  })

  it('the result and its provenance follow formats.md; the report shows every company\'s agreement', () => {
    const doc = JSON.parse(readFileSync(join(work, 'pickups-zone-hour.json'), 'utf8')) as ResultDoc & { provenance: string; session: string }
    expect(doc.dims.map((d) => d.labels.length)).toEqual([263, 24])
    expect(doc.cells).toHaveLength(263 * 24)
    expect(doc.provenance).toBe('pickups-zone-hour.json.provenance.json')
    const prov = JSON.parse(readFileSync(join(work, doc.provenance), 'utf8')) as { certificate: unknown }
    expect(prov.certificate).toBeTruthy()
    const html = readFileSync(join(work, 'report.html'), 'utf8')
    for (const c of ['alpha', 'beta', 'gamma']) expect(html).toContain(`<td>${c}</td>`)
    // the exact heat map, and in the differential-privacy section the noisy one beside the exact one again
    expect(html.match(/<rect class="cell"/g)).toHaveLength(3 * 263 * 24)
    expect(html).toMatch(/noisy beside exact/)
    expect(html).toMatch(/Error per cell/)
  })

  it('the heat map SVG has exactly 263 × 24 cells', () => {
    const doc = JSON.parse(readFileSync(join(work, 'pickups-zone-hour.json'), 'utf8')) as ResultDoc
    expect(heatmapSvg(doc).match(/<rect class="cell"/g)).toHaveLength(263 * 24)
  })
})

describe('run.ts arguments', () => {
  it.each([
    [['--companies', '2'], /--companies must be 3\.\.20/],
    [['--companies', '21'], /--companies must be 3\.\.20/],
    [['--trips', 'many'], /--trips must be an integer/]
  ])('%j fails with one clear line, before starting anything', (args, msg) => {
    const r = spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 30_000 })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(msg)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })
})

describe('run.ts on Ctrl-C', () => {
  it('SIGINT while the agents serve: every child stopped, exit 130', async () => {
    const work = mkdtempSync(join(tmpdir(), 'mpc-rs-int-'))
    try {
      const p = spawn(process.execPath, [RUN, '--trips', '2000', '--workdir', work], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.setEncoding('utf8')
      const serving = new Promise<void>((res, rej) => {
        p.stdout.on('data', (d: string) => {
          out += d
          if (out.includes('company agents serving')) res()
        })
        p.once('exit', (code) => rej(new Error(`run.ts exited (${String(code)}) before the agents served: ${out}`)))
      })
      await serving
      expect(processesMentioning(join(work, 'homes')).length).toBeGreaterThanOrEqual(3)
      const exited = new Promise<number | null>((res) => p.once('exit', (code) => res(code)))
      p.kill('SIGINT')
      expect(await exited).toBe(130)
      expect(processesMentioning(join(work, 'homes'))).toEqual([])
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  }, 120_000)
})
