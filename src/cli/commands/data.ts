// data inspect | preview: a provider looks at its own data and its own contribution, locally.
// Nothing here touches the network; the preview is never sent anywhere.
import { openAgent } from '../../agent/agent.ts'
import { resolverFor } from '../../agent/context.ts'
import { ConfigError } from '../../agent/errors.ts'
import { validateDatasets, datasetFor } from '../../data/source.ts'
import { computeVector, inspectDataset } from '../../data/compute.ts'
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
  const { vector, stats } = await computeVector(src, q)
  const table = decodeResult(q, Array.from(vector))
  vector.fill(0n)
  if (out.opts.json) return out.data({ stats, cells: table.cells })
  out.log(`local preview (never sent): ${stats.rows} rows read, ${stats.matched} matched, ${stats.filtered} filtered out, ${stats.outOfDomain} outside the domains, ${stats.clipped} clipped, ${stats.nullsSkipped} NULLs skipped`)
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
