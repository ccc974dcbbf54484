// audit [verify]: what this agent saw and decided, and whether the log is intact.
import { openAgent } from '../../agent/agent.ts'
import { AuditLog, verifyAudit } from '../../agent/audit.ts'
import { parsePeer } from '../../crypto/peer.ts'
import type { Output } from '../output.ts'

export class AuditError extends Error {
  override name = 'AuditError'
}

export function auditList(home: string, out: Output): void {
  const agent = openAgent(home)
  const entries = AuditLog.open(agent.paths, agent.identity.signer).entries()
  if (out.opts.json) return out.data(entries)
  if (!entries.length) return out.result('audit log is empty')
  out.result(entries.map((e) => {
    const d = (e.data ?? {}) as Record<string, unknown>
    const what = e.kind === 'decision' ? (d.accept ? 'accept' : `reject ${JSON.stringify((d.reasons as Array<{ code: string }> | undefined)?.map((r) => r.code))}`)
      : e.kind === 'abort' ? `${String(d.reason)} accused=${String(d.accused)}`
      : e.kind === 'proposal' || e.kind === 'certificate' ? `${String(d.query_id ?? '')} ${String(d.title ?? '')}`
      : ''
    return `${String(e.seq).padStart(4)}  ${e.at}  ${e.kind.padEnd(11)}  ${(e.session ?? e.proposal ?? '').slice(0, 12).padEnd(12)}  ${what}`
  }).join('\n'))
}

export function auditVerify(home: string, out: Output): void {
  const agent = openAgent(home)
  const v = verifyAudit(agent.paths, parsePeer(agent.identity.peerId).publicKey)
  if (out.opts.json) out.data(v)
  if (!v.ok) throw new AuditError(`audit log ${agent.paths.audit} is not intact: ${v.problems.join('; ')}`)
  out.result(`audit log OK: ${v.entries} entries, head signed by ${agent.identity.peerId}`)
}
