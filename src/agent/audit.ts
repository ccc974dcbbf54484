// The audit log (negotiation.md §6, issue #3): append-only JSONL in the agent home, every entry
// carrying the hash of the previous line, and a head file {seq, hash, sig} signed with the agent's
// key after each append, so an edited, removed, reordered or truncated log — or a rewritten one —
// is detected by `mpc-agent audit verify`. Entries hold metadata and signed messages only: never
// raw data, vectors or seeds.
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import type { HomePaths } from './home.ts'
import { writeFileAtomic } from './files.ts'
import { canonicalize } from '../crypto/canonical.ts'
import { fromHex, toHex, utf8 } from '../crypto/bytes.ts'
import { labelledHash } from '../crypto/hash.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import type { PolicyHistory } from '../policy/evaluate.ts'

export type AuditKind = 'proposal' | 'decision' | 'certificate' | 'outcome' | 'receipt' | 'abort'

export interface AuditEntry {
  seq: number
  at: string
  kind: AuditKind
  session?: string
  proposal?: string
  data: unknown
  prev: string
}

interface Head { seq: number; hash: string; sig: string }

const ZERO = '0'.repeat(64)
const lineHash = (line: string): string => toHex(labelledHash('mpc-agent/audit/v1/entry', utf8(line)))

export class AuditLog implements PolicyHistory {
  private readonly paths: HomePaths
  private readonly signer: Signer
  private seq = 0
  private last = ZERO
  private cache: AuditEntry[] = []

  private constructor(paths: HomePaths, signer: Signer) {
    this.paths = paths
    this.signer = signer
  }

  static open(paths: HomePaths, signer: Signer): AuditLog {
    const log = new AuditLog(paths, signer)
    log.reload()
    return log
  }

  private reload(): void {
    const lines = readLines(this.paths.audit)
    this.cache = lines.map((l) => JSON.parse(l) as AuditEntry)
    this.seq = this.cache.length
    this.last = lines.length ? lineHash(lines[lines.length - 1] as string) : ZERO
  }

  append(kind: AuditKind, f: { session?: string; proposal?: string; data: unknown }): AuditEntry {
    this.reload() // another process (a concurrent `query run`) may have appended
    const entry: AuditEntry = {
      seq: this.seq + 1, at: new Date().toISOString(), kind,
      ...(f.session ? { session: f.session } : {}), ...(f.proposal ? { proposal: f.proposal } : {}),
      data: f.data ?? null, prev: this.last
    }
    const line = canonicalize(JSON.parse(JSON.stringify(entry, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))))
    appendFileSync(this.paths.audit, line + '\n', { mode: 0o600 })
    this.seq = entry.seq
    this.last = lineHash(line)
    this.cache.push(entry)
    const head = { seq: this.seq, hash: this.last }
    writeFileAtomic(this.paths.auditHead, JSON.stringify({ ...head, sig: toHex(this.signer.sign(statementDigest('mpc-agent/audit/v1/head', head))) }) + '\n', 0o600)
    return entry
  }

  entries(): AuditEntry[] {
    this.reload()
    return this.cache
  }

  certifiedRunsByBuyerSince(buyer: string, sinceMs: number): number {
    return this.entries().filter((e) => e.kind === 'certificate' && Date.parse(e.at) >= sinceMs && (e.data as { buyer?: string })?.buyer === buyer).length
  }

  sameTemplateSince(template: string, sinceMs: number): Array<{ providers: string[] }> {
    return this.entries()
      .filter((e) => e.kind === 'certificate' && Date.parse(e.at) >= sinceMs && (e.data as { template?: string })?.template === template)
      .map((e) => ({ providers: (e.data as { providers: string[] }).providers }))
  }
}

function readLines(path: string): string[] {
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0)
}

export interface AuditVerification { ok: boolean; entries: number; problems: string[] }

/** Check the chain and the signed head (the public key is the agent's own). */
export function verifyAudit(paths: HomePaths, publicKey: Uint8Array): AuditVerification {
  const problems: string[] = []
  const lines = readLines(paths.audit)
  let prev = ZERO
  lines.forEach((line, i) => {
    let e: AuditEntry
    try {
      e = JSON.parse(line) as AuditEntry
    } catch {
      problems.push(`line ${i + 1}: not JSON`)
      return
    }
    if (canonicalize(e) !== line) problems.push(`line ${i + 1}: not in canonical form (edited by hand?)`)
    if (e.seq !== i + 1) problems.push(`line ${i + 1}: sequence number ${e.seq} (entries removed, inserted or reordered)`)
    if (e.prev !== prev) problems.push(`line ${i + 1}: does not chain to the previous entry (edited, removed or reordered)`)
    prev = lineHash(line)
  })
  if (!existsSync(paths.auditHead)) {
    if (lines.length) problems.push('the signed head is missing')
  } else {
    try {
      const h = JSON.parse(readFileSync(paths.auditHead, 'utf8')) as Head
      if (!verifySignature(publicKey, statementDigest('mpc-agent/audit/v1/head', { seq: h.seq, hash: h.hash }), fromHex(h.sig, 64))) {
        problems.push('the head is not signed by this agent\'s key (log rewritten?)')
      }
      if (h.seq !== lines.length || h.hash !== prev) problems.push(`the signed head covers ${h.seq} entries but the log has ${lines.length} (truncated or extended)`)
    } catch {
      problems.push('the head file is unreadable')
    }
  }
  return { ok: problems.length === 0, entries: lines.length, problems }
}
