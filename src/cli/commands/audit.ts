// audit [verify]: what this agent saw and decided, and whether the log is intact (issue #3).
import { openAgent } from '../../agent/agent.ts'
import { AuditLog, verifyAudit, type AuditEntry } from '../../agent/audit.ts'
import { parsePeer } from '../../crypto/peer.ts'
import { peerNamer } from '../../agent/context.ts'
import { ConfigError } from '../../agent/errors.ts'
import type { Output } from '../output.ts'

/** The log or its signed head was altered: the CLI maps it to exit 6 (bad local data). */
export class AuditError extends Error {
  override name = 'AuditError'
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v))
const abbrev = (id: unknown): string => (typeof id === 'string' && id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-4)}` : str(id))

/** One line saying what happened, from the entry's metadata (never its evidence in full); peers by name when known. */
export function summarize(e: AuditEntry, nameOf: (id: string) => string = (id) => id): string {
  const short = (id: unknown): string => {
    if (typeof id !== 'string') return str(id)
    const n = nameOf(id)
    return n !== id ? n : abbrev(id)
  }
  const d = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as Record<string, unknown>
  switch (e.kind) {
    case 'proposal':
      return `${str(d.query_id)} ${str(d.title)} from ${short(d.buyer)}`.trim()
    case 'decision':
      return d.accept ? 'accept' : `reject ${((d.reasons as Array<{ code?: string }> | undefined) ?? []).map((r) => r.code).join(',')}`
    case 'certificate':
      return `${str(d.query_id)} buyer ${short(d.buyer)}, providers ${Array.isArray(d.providers) ? d.providers.map(short).join(', ') : '?'}`
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
  const nameOf = peerNamer(agent)
  if (out.opts.json) out.data(entries)
  else if (!entries.length) out.result('audit log is empty')
  else {
    const rows = entries.map((e) =>
      `${String(e.seq).padStart(5)}  ${e.at}  ${e.kind.padEnd(11)}  ${(e.session ?? e.proposal ?? '').slice(0, 12).padEnd(12)}  ${summarize(e, nameOf)}`)
    out.result([`${'seq'.padStart(5)}  ${'time'.padEnd(24)}  ${'kind'.padEnd(11)}  ${'session'.padEnd(12)}  summary`, ...rows, '', 'one entry in full: `mpc-agent audit show SEQ`'].join('\n'))
  }
  // a listing of an altered log must not look trustworthy: warn and exit 6
  const v = verifyAudit(agent.paths, parsePeer(agent.identity.peerId).publicKey)
  if (!v.ok) throw new AuditError(`WARNING: audit log ${agent.paths.audit} does not verify (it was altered): ${v.problems.join('; ')}`)
}

/** One entry in full (its data and evidence as recorded), peers named. */
export function auditShow(home: string, seq: string, out: Output): void {
  const agent = openAgent(home)
  const n = Number(seq)
  const entries = AuditLog.open(agent.paths, agent.identity.signer).entries()
  const e = entries.find((x) => x.seq === n)
  if (!Number.isInteger(n) || !e) throw new ConfigError(`no audit entry ${seq}: \`mpc-agent audit\` lists them (seq ${entries[0]?.seq ?? 0}–${entries.at(-1)?.seq ?? 0})`)
  if (out.opts.json) return out.data(e)
  const nameOf = peerNamer(agent)
  // peer IDs in the entry get their configured names beside them
  const named = JSON.stringify(e, null, 2).replace(/"(12D3KooW[1-9A-HJ-NP-Za-km-z]{44,})"/g, (m, id: string) => (nameOf(id) !== id ? `${m} (${nameOf(id)})` : m))
  out.result(`${e.kind} #${e.seq} at ${e.at}: ${summarize(e, nameOf)}\n${named}`)
  const v = verifyAudit(agent.paths, parsePeer(agent.identity.peerId).publicKey)
  if (!v.ok) throw new AuditError(`WARNING: audit log ${agent.paths.audit} does not verify (it was altered): ${v.problems.join('; ')}`)
}

export function auditVerify(home: string, out: Output): void {
  const agent = openAgent(home)
  const v = verifyAudit(agent.paths, parsePeer(agent.identity.peerId).publicKey)
  if (out.opts.json) out.data(v)
  if (!v.ok) throw new AuditError(`audit log ${agent.paths.audit} is not intact: ${v.problems.join('; ')}`)
  out.result(v.entries ? `audit log OK: ${v.entries} entries, head signed` : 'audit log OK: 0 entries (empty, no head yet)')
}
