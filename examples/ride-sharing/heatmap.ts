// The zones × hours heat map of the pickups result: in the terminal (the busiest zones, shaded),
// and as an SVG with every one of the 263 × 24 cells.
import { readFileSync } from 'node:fs'
import type { ResultDoc } from './verify.ts'

export interface ZoneInfo { borough: string; zone: string }

/** TLC's taxi_zone_lookup.csv (LocationID,Borough,Zone,service_zone), if the user has it. */
export function loadZones(path: string | undefined): Map<number, ZoneInfo> {
  const out = new Map<number, ZoneInfo>()
  if (!path) return out
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/).slice(1)) {
    const m = /^"?(\d+)"?,"?([^",]*)"?,"?([^"]*?)"?,"?[^",]*"?$/.exec(line)
    if (m) out.set(Number(m[1]), { borough: m[2] as string, zone: m[3] as string })
  }
  return out
}

/** grid[zone-1][hour] */
export function pickupsGrid(doc: ResultDoc): number[][] {
  const grid = Array.from({ length: 263 }, () => new Array<number>(24).fill(0))
  for (const c of doc.cells) {
    const z = Number(c.key[0])
    const h = Number(c.key[1])
    const row = grid[z - 1]
    if (row) row[h] = Number(c.values.pickups ?? 0)
  }
  return grid
}

const SHADES = [' ', '░', '▒', '▓', '█']

export function terminalHeatmap(doc: ResultDoc, zones: Map<number, ZoneInfo>, opts: { top?: number; color?: boolean } = {}): string {
  const grid = pickupsGrid(doc)
  const top = grid.map((row, i) => ({ zone: i + 1, row, total: row.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total).slice(0, opts.top ?? 20)
  const max = Math.max(1, ...top.flatMap((t) => t.row))
  const label = (z: number): string => (zones.get(z)?.zone ?? `zone ${z}`).slice(0, 24).padEnd(24)
  const lines = [`${''.padEnd(24)} ${Array.from({ length: 24 }, (_, h) => (h % 3 === 0 ? String(h).padEnd(3) : '')).join('')}`]
  for (const t of top) {
    const cells = t.row.map((v) => {
      const x = Math.sqrt(v / max)
      if (opts.color) return `\x1b[48;5;${232 + Math.round(x * 23)}m \x1b[0m`
      return SHADES[Math.min(4, Math.ceil(x * 4))] as string
    }).join('')
    lines.push(`${label(t.zone)} ${cells} ${t.total}`)
  }
  lines.push(`(top ${top.length} of 263 zones by weekday pickups; darker = more, square-root scale; hours 0-23)`)
  return lines.join('\n')
}

/** Colour from a light-yellow to dark-red ramp for x in [0, 1]. */
function ramp(x: number): string {
  const stops = [[255, 255, 204], [254, 217, 118], [253, 141, 60], [227, 26, 28], [128, 0, 38]]
  const p = Math.min(0.9999, Math.max(0, x)) * (stops.length - 1)
  const i = Math.floor(p)
  const f = p - i
  const a = stops[i] as number[]
  const b = stops[i + 1] as number[]
  const ch = (k: number): number => Math.round((a[k] as number) + ((b[k] as number) - (a[k] as number)) * f)
  return `rgb(${ch(0)},${ch(1)},${ch(2)})`
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export function heatmapSvg(doc: ResultDoc, zones: Map<number, ZoneInfo> = new Map()): string {
  const grid = pickupsGrid(doc)
  const max = Math.max(1, ...grid.flat())
  const cw = 22, ch = 4, left = 60, topPad = 40
  const width = left + 24 * cw + 130
  const height = topPad + 263 * ch + 40
  const rects: string[] = []
  grid.forEach((row, z) => row.forEach((v, h) => {
    const title = `${zones.get(z + 1)?.zone ?? `zone ${z + 1}`}, ${String(h).padStart(2, '0')}:00 — ${v} pickups`
    rects.push(`<rect class="cell" x="${left + h * cw}" y="${topPad + z * ch}" width="${cw}" height="${ch}" fill="${ramp(Math.sqrt(Math.max(0, v) / max))}"><title>${esc(title)}</title></rect>`)
  }))
  const hours = Array.from({ length: 24 }, (_, h) => `<text x="${left + h * cw + cw / 2}" y="${topPad - 6}" font-size="10" text-anchor="middle">${h}</text>`)
  const zoneTicks = [1, 50, 100, 150, 200, 263].map((z) => `<text x="${left - 6}" y="${topPad + (z - 1) * ch + ch}" font-size="10" text-anchor="end">${z}</text>`)
  const legend = Array.from({ length: 10 }, (_, i) => `<rect class="legend" x="${left + 24 * cw + 20}" y="${topPad + i * 20}" width="16" height="20" fill="${ramp(1 - i / 9)}"/>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<text x="${left}" y="16" font-size="13">Weekday pickups per taxi zone (rows) and hour of day (columns)</text>
${hours.join('')}${zoneTicks.join('')}
<text x="14" y="${topPad + 130 * ch}" font-size="11" transform="rotate(-90 14 ${topPad + 130 * ch})" text-anchor="middle">taxi zone (PULocationID)</text>
${rects.join('\n')}
${legend.join('')}<text x="${left + 24 * cw + 40}" y="${topPad + 10}" font-size="10">${max}</text><text x="${left + 24 * cw + 40}" y="${topPad + 195}" font-size="10">0</text><text x="${left + 24 * cw + 20}" y="${topPad + 220}" font-size="10">pickups per cell</text><text x="${left + 24 * cw + 20}" y="${topPad + 234}" font-size="10">(square-root scale)</text>
</svg>
`
}
