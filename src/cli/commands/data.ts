// data inspect | preview: a provider looks at its own data and its own contribution, locally.
// Nothing here touches the network; the preview is never sent anywhere.
import { openAgent } from '../../agent/agent.ts'
import { resolverFor } from '../../agent/context.ts'
import { ConfigError } from '../../agent/errors.ts'
import { validateDatasets, datasetFor } from '../../data/source.ts'
import { computeVector, inspectDataset, type VectorStats } from '../../data/compute.ts'
import { checkDataset } from '../../data/check.ts'
import { diagnoseCleaning, type CleaningReport } from '../../data/diagnose.ts'
import { DataError } from '../../data/errors.ts'
import { loadQueryFile } from '../../query/parse.ts'
import { decodeResult, resultToCsv } from '../../query/result.ts'
import type { Output } from '../output.ts'

export async function dataInspect(home: string, name: string, out: Output): Promise<void> {
  const agent = openAgent(home)
  const src = datasetFor(validateDatasets(agent.config.datasets, agent.paths.dir), name)
  const info = await inspectDataset(src)
  if (out.opts.json) return out.data({ dataset: name, path: src.path, format: src.format, ...info })
  out.result([`${name}: ${src.format} ${src.path}`, `rows: ${info.rows}`, ...info.columns.map((c) => `  ${c.name}  ${c.type}`)].join('\n'))
}

export async function dataPreview(home: string, file: string, o: { buyer?: string; format: 'table' | 'csv' }, out: Output): Promise<void> {
  const agent = openAgent(home)
  const resolve = resolverFor(agent)
  const buyerName = o.buyer ?? agent.config.peers.find((p) => p.role === 'buyer')?.name ?? agent.config.name
  const buyer = resolve(buyerName)
  if (!buyer) throw new ConfigError(`unknown buyer "${buyerName}"`)
  const q = loadQueryFile(file, buyer, resolve)
  const src = datasetFor(validateDatasets(agent.config.datasets, agent.paths.dir), q.dataset)
  // the same schema check a serving provider makes before it signs (negotiation.md §6.1)
  const bad = await checkDataset(src, q, agent.config.name)
  if (bad) throw new DataError(`${bad.code}: ${bad.local}`)
  const { vector, stats } = await computeVector(src, q, { countFiltered: true })
  const cleaning = await diagnoseCleaning(src, q)
  // this provider's own contribution, bounded per privacy unit but before noise: decoded as an exact vector
  const { privacy: _p, ...exactQuery } = q
  const table = decodeResult(exactQuery, Array.from(vector))
  vector.fill(0n)
  if (out.opts.json) return out.data({ stats, cleaning, cells: table.cells })
  for (const line of cleaningLines(stats, cleaning, q.max_rows_per_provider)) out.log(line)
  if (o.format === 'csv') return out.result(resultToCsv(table))
  // every aggregate by name; the 10 largest cells by the first one, and say so
  const first = table.aggregates[0] ?? ''
  const top = table.cells
    .map((c) => ({ label: c.key.join(' × ') || '(total)', values: table.aggregates.map((a) => c.values[a] ?? null) }))
    .sort((x, y) => (y.values[0] ?? 0) - (x.values[0] ?? 0))
    .slice(0, 10)
  const header = [table.dims.join(' × ') || 'cell', ...table.aggregates]
  const w0 = Math.max(header[0]?.length ?? 0, ...top.map((t) => t.label.length))
  const ws = table.aggregates.map((a, i) => Math.max(a.length, ...top.map((t) => String(t.values[i] ?? '').length)))
  const line = (cols: string[]): string => cols.map((c, i) => (i === 0 ? c.padEnd(w0) : c.padStart(ws[i - 1] ?? 0))).join('  ')
  const note = table.cells.length > top.length ? `top ${top.length} of ${table.cells.length} cells by ${first} (all of them: --format csv)` : `all ${table.cells.length} cells`
  out.result([note, line(header), ...top.map((t) => line([t.label, ...t.values.map((v) => (v == null ? '' : String(v)))]))].join('\n'))
}

/** Every cleaning count of negotiation.md §3.7, for this provider's operator only. */
export function cleaningLines(stats: VectorStats, cleaning: CleaningReport, maxRows: number): string[] {
  const lines = [
    `local preview (never sent): ${stats.rows ?? 'uncounted'} rows read, ${stats.matched} matched, ${stats.filtered ?? 'uncounted'} filtered out, ${stats.outOfDomain} outside the domains (dropped), ${stats.clipped} clipped, ${stats.nullsSkipped} NULLs skipped, ${stats.clamped} cell values clamped to max_rows_per_provider ${maxRows}, ${cleaning.rejectedLines} malformed lines skipped`
  ]
  for (const c of cleaning.columns) {
    lines.push(`  column ${c.column} (${c.type}): ${c.unconvertible} values not convertible (read as NULL), ${c.nan} NaN (read as NULL), ${c.infinite} infinite`)
  }
  for (const a of stats.perAggregate) if (a.kind === 'sum' || a.kind === 'mean') lines.push(`  aggregate ${a.aggregate}: ${a.nullsSkipped} NULLs skipped, ${a.clipped} values clipped`)
  if (stats.clamped > 0) lines.push(`  the clamp bound on your data: the result reveals Σ min(count, ${maxRows}) per cell, not the plain sum (negotiation.md §3.7)`)
  return lines
}
