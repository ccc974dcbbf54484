// approve | reject a proposal waiting for manual approval in a running `serve` (control socket).
import { homePaths } from '../../agent/home.ts'
import { controlRequest } from '../../agent/control.ts'
import { ConfigError } from '../../agent/errors.ts'
import type { Output } from '../output.ts'

export async function decideCommand(home: string, id: string | undefined, approve: boolean, out: Output): Promise<void> {
  const paths = homePaths(home)
  if (!id) {
    const r = await controlRequest(paths.control, { cmd: 'list' })
    const pending = (r.pending ?? []) as Array<{ id: string; summary: Record<string, unknown> }>
    if (out.opts.json) return out.data(pending)
    if (!pending.length) return out.result('no proposal is waiting for approval')
    return out.result(pending.map((p) => `${p.id.slice(0, 12)}  ${String(p.summary.title ?? '')}  from ${String(p.summary.buyer ?? '?')}  (${String(p.summary.cells ?? '?')} cells)`).join('\n'))
  }
  const r = await controlRequest(paths.control, { cmd: approve ? 'approve' : 'reject', id })
  if (!r.ok) throw new ConfigError(r.message ?? `no pending proposal ${id}: list them with \`mpc-agent approve\``)
  out.result(`${approve ? 'approved' : 'rejected'} ${id}`)
}
