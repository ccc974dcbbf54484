// report.html: the study's results (tables, the heat map), the agreement each company signed, and
// timings — one self-contained file. heatmap.svg beside it.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { heatmapSvg, type ZoneInfo } from './heatmap.ts'
import type { NoisyVerdict, ResultDoc } from './verify.ts'

export interface ReportInput {
  results: ResultDoc[]
  verification: Array<{ query: string; ok: boolean; mismatches: string[]; noisy?: NoisyVerdict }>
  agreements: Array<{ company: string; peerId: string; query: string; session: string; signature: string }>
  timings: Array<{ query: string; seconds: number }>
  /** The agreement certificate of each query as the city holds it (provenance file), shown as JSON. */
  certificates?: Array<{ query: string; certificate: unknown }>
  companies: Array<{ name: string; trips: number; license: string }>
  trueVehicles?: Map<string, number>
  zones?: Map<number, ZoneInfo>
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((x) => `<td>${esc(String(x))}</td>`).join('')}</tr>`).join('')}</tbody></table>`
}

function noisySection(r: ReportInput): string {
  const v = r.verification.find((x) => x.noisy)?.noisy
  const doc = r.results.find((d) => d.privacy)
  if (!v || !doc?.privacy) return ''
  const worst = [...v.errors].sort((a, b) => Math.abs(b.error) - Math.abs(a.error)).slice(0, 25)
  return `<h2>With differential privacy: noisy beside exact</h2>
<p>Query ${esc(doc.query.id)}: epsilon ${doc.privacy.epsilon}, delta ${doc.privacy.delta}, ${esc(doc.privacy.mechanism)} noise added by every company
inside the masked sum; noise std per cell ${doc.privacy.aggregates.pickups?.std.toFixed(2)}, 95% interval ±${doc.privacy.aggregates.pickups?.half_width_95}.
Mean |error| per cell ${v.meanAbsError.toFixed(2)}, max ${v.maxAbsError}.</p>
<div style="display:flex;gap:1em"><div><h3>noisy</h3>${heatmapSvg(doc, r.zones)}</div>${r.results.find((d) => d.query.id === 'pickups-zone-hour') ? `<div><h3>exact</h3>${heatmapSvg(r.results.find((d) => d.query.id === 'pickups-zone-hour') as ResultDoc, r.zones)}</div>` : ''}</div>
<h3>Error per cell (the 25 largest; all ${v.cells} in the details)</h3>
${table(['cell (zone|hour)', 'exact', 'noisy', 'error'], worst.map((e) => [e.key, e.exact, e.noisy, e.error]))}
<details><summary>every cell</summary>${table(['cell (zone|hour)', 'exact', 'noisy', 'error'], v.errors.map((e) => [e.key, e.exact, e.noisy, e.error]))}</details>`
}

export function writeReport(dir: string, r: ReportInput): { html: string; svg: string } {
  const pick = r.results.find((d) => d.query.id === 'pickups-zone-hour')
  const fare = r.results.find((d) => d.query.id === 'mean-fare-rush')
  const veh = r.results.find((d) => d.query.id === 'vehicles-rush-hour')
  const zoneName = (z: string): string => r.zones?.get(Number(z))?.zone ?? `zone ${z}`
  const svg = pick ? heatmapSvg(pick, r.zones) : '<svg xmlns="http://www.w3.org/2000/svg"/>'
  const topZones = pick ? Object.entries(pick.cells.reduce<Record<string, number>>((acc, c) => {
    acc[c.key[0] as string] = (acc[c.key[0] as string] ?? 0) + Number(c.values.pickups ?? 0)
    return acc
  }, {})).sort((a, b) => b[1] - a[1]).slice(0, 10) : []
  const fares = fare ? fare.cells.filter((c) => c.values.mean_fare != null).sort((a, b) => Number(b.values.trips) - Number(a.values.trips)).slice(0, 10) : []
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ride-sharing study — mpc-agent</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
.ok{color:#060}.bad{color:#a00;font-weight:bold}code{background:#f4f4f4;padding:1px 4px}</style></head>
<body>
<h1>Ride-sharing study</h1>
<p>${r.companies.length} companies (${r.companies.map((c) => `${esc(c.name)}: ${c.trips} trips`).join(', ')}) each ran an mpc-agent provider on its own
trip records; the city ran the buyer. Every company's agent checked each query against its own policy and signed the agreement;
each sent only a masked vector; the city learned the totals below and nothing else.</p>
<h2>Verification</h2>
<ul>${r.verification.map((v) => `<li class="${v.ok ? 'ok' : 'bad'}">${esc(v.query)}: ${v.noisy ? `noisy (differential privacy): the exact total lies inside the reported 95% interval in ${v.noisy.hits} of ${v.noisy.cells} cells (coverage ${v.noisy.coverage.toFixed(4)}; binomial check at 1e-6 ${v.ok ? 'passed' : 'FAILED'})` : v.ok ? 'verified — equal to the plaintext totals computed directly from the files' : `MISMATCH (${v.mismatches.length} cells)`}</li>`).join('')}</ul>
${noisySection(r)}
<h2>Pickups per zone and hour (weekdays)</h2>
<div id="heatmap">${svg}</div>
<h3>Busiest pickup zones</h3>
${table(['zone', 'weekday pickups'], topZones.map(([z, n]) => [zoneName(z), n]))}
<h2>Mean fare per zone in rush hours</h2>
${table(['zone', 'trips', 'mean fare ($)'], fares.map((c) => [zoneName(c.key[0] as string), Number(c.values.trips), Number(c.values.mean_fare).toFixed(2)]))}
<h2>Vehicles in service per rush hour</h2>
${table(['hour', 'vehicles (sum of per-company distinct counts)', ...(r.trueVehicles ? ['distinct over all companies (plaintext, for comparison)'] : [])], (veh?.cells ?? []).map((c) => [c.key[0] as string, Number(c.values.vehicles), ...(r.trueVehicles ? [r.trueVehicles.get(c.key[0] as string) ?? 0] : [])]))}
<p>Each company counts its own distinct vehicles per hour and the city receives the sum: a driver who works for several
companies in the same hour is counted once per company, so the sum can exceed the true number of distinct vehicles.</p>
<h2>The agreement each company signed</h2>
${table(['company', 'peer ID', 'query', 'session (certificate digest)', 'acceptance signature'], r.agreements.map((a) => [a.company, a.peerId, a.query, a.session, `${a.signature.slice(0, 32)}…`]))}
${(r.certificates ?? []).map((c) => `<details><summary>certificate of ${esc(c.query)} (JSON)</summary><pre>${esc(JSON.stringify(c.certificate, null, 1))}</pre></details>`).join('\n')}
<h2>Timings</h2>
${table(['query', 'seconds (query run, end to end)'], r.timings.map((t) => [t.query, t.seconds.toFixed(2)]))}
</body></html>
`
  const htmlPath = join(dir, 'report.html')
  const svgPath = join(dir, 'heatmap.svg')
  writeFileSync(htmlPath, html)
  writeFileSync(svgPath, svg)
  return { html: htmlPath, svg: svgPath }
}
