// Issue #6: the heat map (terminal and SVG with all 263 × 24 cells) and report.html, from a small
// fixture result — independent of the network run — and the report rendered in headless Chromium.
import { describe, expect, it, afterAll } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { heatmapSvg, loadZones, terminalHeatmap } from '../../examples/ride-sharing/heatmap.ts'
import { writeReport, type ReportInput } from '../../examples/ride-sharing/report.ts'
import type { ResultDoc } from '../../examples/ride-sharing/verify.ts'

const ZONES = fileURLToPath(new URL('../../../shared/data/taxi_zone_lookup.csv', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'mpc-report-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const zones = Array.from({ length: 263 }, (_, i) => String(i + 1))
const hours = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0'))
// zone 161 (Midtown Center) busiest, then 237, 132; rush hours peak
const pickups = (z: number, h: number): number => Math.round((z === 161 ? 900 : z === 237 ? 700 : z === 132 ? 500 : (z * 37) % 50) * ([7, 8, 9, 16, 17, 18].includes(h) ? 3 : 1))

const FIXTURE: ResultDoc[] = [
  {
    query: { id: 'pickups-zone-hour' },
    dims: [{ name: 'zone', labels: zones }, { name: 'hour', labels: hours }],
    cells: zones.flatMap((z) => hours.map((h) => ({ key: [z, h], values: { pickups: pickups(Number(z), Number(h)) } })))
  },
  {
    query: { id: 'mean-fare-rush' },
    dims: [{ name: 'zone', labels: zones }],
    cells: zones.map((z) => ({ key: [z], values: Number(z) % 7 === 0 ? { trips: 0, mean_fare: null } : { trips: Number(z) * 3, mean_fare: 20 + (Number(z) % 13) } }))
  },
  {
    query: { id: 'vehicles-rush-hour' },
    dims: [{ name: 'hour', labels: ['7', '8', '9', '16', '17', '18'] }],
    cells: ['7', '8', '9', '16', '17', '18'].map((h) => ({ key: [h], values: { vehicles: 1000 + Number(h) } }))
  }
]

const INPUT: ReportInput = {
  results: FIXTURE,
  verification: FIXTURE.map((d) => ({ query: d.query.id, ok: true, mismatches: [] })),
  agreements: ['alpha', 'beta', 'gamma'].map((c, i) => ({ company: c, peerId: `12D3KooW${c}`, query: 'pickups-zone-hour', session: 'ab'.repeat(32), signature: `${i}`.repeat(128) })),
  certificates: [{ query: 'pickups-zone-hour', certificate: { body: { acceptances: [{ provider: '12D3KooWalpha', sig: '00' }] }, sig: '<script>alert(1)</script>' } }],
  timings: FIXTURE.map((d, i) => ({ query: d.query.id, seconds: 1.5 + i })),
  companies: [{ name: 'alpha', trips: 1000, license: 'HV0003' }, { name: 'beta', trips: 800, license: 'HV0005' }, { name: 'gamma', trips: 600, license: 'HV0002' }],
  trueVehicles: new Map([['8', 900]]),
  zones: existsSync(ZONES) ? loadZones(ZONES) : new Map()
}

describe('heat map', () => {
  const doc = FIXTURE[0] as ResultDoc

  it('SVG: exactly 263 × 24 cells, hour labels, a legend, the maximum in the legend', () => {
    const svg = heatmapSvg(doc)
    expect(svg.match(/<rect class="cell"/g)).toHaveLength(263 * 24)
    expect(svg.match(/<rect class="legend"/g)?.length).toBeGreaterThanOrEqual(5)
    for (const h of [0, 8, 23]) expect(svg).toContain(`text-anchor="middle">${h}</text>`)
    expect(svg).toContain(`>${pickups(161, 8)}</text>`)
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    // the busiest cell is the darkest colour, an empty one the lightest
    const fill = (z: number, h: number): string => (new RegExp(`<rect class="cell" x="${60 + h * 22}" y="${40 + (z - 1) * 4}"[^>]*fill="([^"]+)"`).exec(svg)?.[1]) ?? ''
    expect(fill(161, 8)).toBe('rgb(128,0,38)')
    expect(fill(50, 3)).toBe('rgb(255,255,204)') // (50 * 37) % 50 = 0 pickups
  })

  it('SVG cells name the zone when a lookup is given; names are escaped', () => {
    const svg = heatmapSvg(doc, new Map([[161, { borough: 'Manhattan', zone: 'Midtown <Center> & "co"' }]]))
    expect(svg).toContain('Midtown &#60;Center&#62; &#38; &#34;co&#34;, 08:00')
    expect(svg).not.toContain('<Center>')
  })

  it('terminal: the top 20 zones by total, busiest first; ANSI colours only when asked (a TTY)', () => {
    const plain = terminalHeatmap(doc, new Map())
    const lines = plain.split('\n')
    expect(lines).toHaveLength(1 + 20 + 1)
    expect(lines[1]).toMatch(/^zone 161 /)
    expect(lines[2]).toMatch(/^zone 237 /)
    expect(plain).not.toContain('\x1b')
    expect(plain).toContain('█')
    const colour = terminalHeatmap(doc, new Map(), { color: true, top: 5 })
    expect(colour).toContain('\x1b[48;5;')
    expect(colour.split('\n')).toHaveLength(1 + 5 + 1)
  })

  it.skipIf(!existsSync(ZONES))('terminal: zone names from TLC\'s lookup file', () => {
    const z = loadZones(ZONES)
    expect(z.size).toBe(265)
    expect(z.get(161)).toEqual({ borough: 'Manhattan', zone: 'Midtown Center' })
    expect(terminalHeatmap(doc, z).split('\n')[1]).toMatch(/^Midtown Center /)
  })
})

describe('report.html', () => {
  const { html, svg } = writeReport(work, INPUT)
  const text = readFileSync(html, 'utf8')

  it('is self-contained: inline heat map, the tables, agreements, certificates, timings, the double-counting note', () => {
    expect(readFileSync(svg, 'utf8').match(/<rect class="cell"/g)).toHaveLength(263 * 24)
    expect(text.match(/<rect class="cell"/g)).toHaveLength(263 * 24)
    expect(text).not.toMatch(/<script|<link|src="http/)
    expect(text).toContain('&#60;script&#62;alert(1)') // certificate JSON escaped, not executed
    for (const q of ['pickups-zone-hour', 'mean-fare-rush', 'vehicles-rush-hour']) expect(text).toContain(`${q}: verified`)
    for (const c of ['alpha', 'beta', 'gamma']) expect(text).toContain(`12D3KooW${c}`)
    expect(text).toMatch(/counted once per company/)
    expect(text).toContain('2.50')
    if (existsSync(ZONES)) expect(text).toContain('Midtown Center')
  })

  it('marks a failed verification', () => {
    const dir = mkdtempSync(join(work, 'bad-'))
    const r = writeReport(dir, { ...INPUT, verification: [{ query: 'mean-fare-rush', ok: false, mismatches: ['x', 'y'] }] })
    expect(readFileSync(r.html, 'utf8')).toContain('MISMATCH (2 cells)')
  })

  it('renders in headless Chromium: a real screenshot, 263 × 24 cells in the DOM, no console errors', (ctx) => {
    const bin = ['chromium', 'chromium-browser', 'google-chrome'].map((c) => spawnSync('which', [c], { encoding: 'utf8' })).find((r) => r.status === 0)?.stdout.trim()
    if (!bin) {
      ctx.skip(true, 'chromium not found (install it: apt-get install -y chromium)')
      return
    }
    const page = `file://${html}`
    const shot = join(work, 'report.png')
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars', `--user-data-dir=${join(work, 'chrome')}`]
    const s = spawnSync(bin, [...flags, '--enable-logging=stderr', '--v=0', `--screenshot=${shot}`, '--window-size=1280,2000', page], { encoding: 'utf8', timeout: 90_000 })
    expect(existsSync(shot), s.stderr.slice(-2000)).toBe(true)
    const png = readFileSync(shot)
    expect(png.subarray(1, 4).toString()).toBe('PNG')
    expect(png.readUInt32BE(16)).toBe(1280) // IHDR width
    expect(statSync(shot).size).toBeGreaterThan(20_000) // a blank page compresses to a few kB
    // chromium logs every console message as `INFO:CONSOLE:<line>] "<text>"`; the report has no script at all
    const consoleLines = (stderr: string): string[] => stderr.split('\n').filter((l) => /:CONSOLE[:(]\d+|Uncaught/.test(l))
    expect(consoleLines(s.stderr)).toEqual([])
    const dom = spawnSync(bin, [...flags, '--dump-dom', page], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024 })
    expect(dom.status, dom.stderr.slice(-2000)).toBe(0)
    expect(dom.stdout.match(/<rect class="cell"/g)).toHaveLength(263 * 24)
    expect(dom.stdout).toContain('Ride-sharing study')
    // negative control: the console check sees an error on a page that has one
    const badPage = join(work, 'console-error.html')
    writeFileSync(badPage, '<!doctype html><body><script>console.error("boom")</script></body>')
    const b = spawnSync(bin, [...flags, '--enable-logging=stderr', '--v=0', `--screenshot=${join(work, 'bad.png')}`, '--window-size=400,300', `file://${badPage}`], { encoding: 'utf8', timeout: 90_000 })
    expect(consoleLines(b.stderr).join('\n')).toContain('boom')
  }, 120_000)
})
