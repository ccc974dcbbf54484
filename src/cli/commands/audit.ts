// audit [verify]: what this agent saw and decided, and whether the log is intact (issue #3).
import { openAgent } from '../../agent/agent.ts'
import { AuditLog, verifyAudit, type AuditEntry } from '../../agent/audit.ts'
import { parsePeer } from '../../crypto/peer.ts'
import type { Output } from '../output.ts'

/** The log or its signed head was altered: the CLI maps it to exit 6 (bad local data). */
export class AuditError extends Error {
  override name = 'AuditError'
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v))
const short = (id: unknown): string => (typeof id === 'string' && id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-4)}` : str(id))

/** One line saying what happened, from the entry's metadata (never its evidence in full). */
export function summarize(e: AuditEntry): string {
  const d = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as Record<string, unknown>
  switch (e.kind) {
    case 'proposal':
      return `${str(d.query_id)} ${str(d.title)} from ${short(d.buyer)}`.trim()
    case 'decision':
      return d.accept ? 'accept' : `reject ${((d.reasons as Array<{ code?: string }> | undefined) ?? []).map((r) => r.code).join(',')}`
    case 'certificate':
      return `${str(d.query_id)} buyer ${short(d.buyer)}, ${Array.isArray(d.providers) ? d.providers.length : '?'} providers`
    case 'abort':
    {
      if (d.after_reveal) return str(d.note)
      const pair = Array.isArray(d.disputants) ? d.disputants.map(short) : null
      const who = d.accused ? ` accused ${short(d.accused)} (proven)`
        : pair ? (d.reason === 'timeout' || d.reason === 'unreachable' ? ` no answer from ${pair[1]} (as seen by ${pair[0]})` : ` dispute between ${pair[0]} and ${pair[1]}`)
        : ''
      const cause = typeof d.cause === 'object' && d.cause !== null ? ` (relaying ${short((d.cause as Record<string, unknown>).by)})` : ''
      return `${str(d.reason)}${who}${cause}${d.detail ? `: ${str(d.detail)}` : ''}`
    }
    case 'outcome':
      return d.rejected ? 'rejected by policy' : `${d.cells !== undefined ? `${str(d.cells)} cells` : ''}${d.result ? ` → ${str(d.result)}` : ''}`.trim()
    case 'receipt':
      return d.output ? 'receipt, output released' : 'receipt'
    case 'refused':
      return `${str(d.protocol)} stream from ${short(d.peer)} refused: ${str(d.reason)}${d.detail ? `: ${str(d.detail)}` : ''}${d.unrecorded ? ` (+${str(d.unrecorded)} unrecorded)` : ''}`
    case 'reveal':
      return 'self-mask seed revealed'
    case 'pins_cleared':
      return `${Array.isArray(d.pins) ? d.pins.length : '?'} differencing pin(s) cleared by the operator`
    default:
      return ''
  }
}

export function auditList(home: string, out: Output): void {
  const agent = openAgent(home)
  const entries = AuditLog.open(agent.paths, agent.identity.signer).entries()
  if (out.opts.json) return out.data(entries)
  if (!entries.length) return out.result('audit log is empty')
  const rows = entries.map((e) =>
    `${String(e.seq).padStart(5)}  ${e.at}  ${e.kind.padEnd(11)}  ${(e.session ?? e.proposal ?? '').slice(0, 12).padEnd(12)}  ${summarize(e)}`)
  out.result([`${'seq'.padStart(5)}  ${'time'.padEnd(24)}  ${'kind'.padEnd(11)}  ${'session'.padEnd(12)}  summary`, ...rows].join('\n'))
}

export function auditVerify(home: string, out: Output): void {
  const agent = openAgent(home)
  const v = verifyAudit(agent.paths, parsePeer(agent.identity.peerId).publicKey)
  if (out.opts.json) out.data(v)
  if (!v.ok) throw new AuditError(`audit log ${agent.paths.audit} is not intact: ${v.problems.join('; ')}`)
  out.result(v.entries ? `audit log OK: ${v.entries} entries, head signed` : 'audit log OK: 0 entries (empty, no head yet)')
}
