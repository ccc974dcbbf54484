// The audit log (negotiation.md §6, issue #3): append-only JSONL in the agent home, every entry
// carrying the hash of the previous line, and a head file {seq, hash, sig} signed with the agent's
// key after each append, so an edited, removed, reordered or truncated log — or a rewritten one —
// is detected by `mpc-agent audit verify`. Entries hold metadata and signed messages only: never
// raw data, vectors or seeds (numeric arrays longer than VECTOR_LIMIT are redacted on append).
//
// What it cannot detect: the log AND the head both deleted (an empty home verifies as empty), or a
// rollback to an older (log, head) pair copied earlier — anchor the head elsewhere for that.
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs'
import type { HomePaths } from './home.ts'
import { acquireLock, writeFileAtomic } from './files.ts'
import { canonicalize } from '../crypto/canonical.ts'
import { fromHex, toHex, utf8 } from '../crypto/bytes.ts'
import { labelledHash } from '../crypto/hash.ts'
import { statementDigest, verifySignature, type Signer } from '../crypto/sign.ts'
import type { PolicyHistory } from '../policy/evaluate.ts'

/** `refused`: an inbound stream this agent refused before any run (peer, protocol, reason; issue 14 §5). */
export type AuditKind = 'proposal' | 'decision' | 'certificate' | 'outcome' | 'receipt' | 'abort' | 'refused' | 'reveal' | 'pins_cleared' | 'privacy_ledger'
export const AUDIT_KINDS: readonly AuditKind[] = ['proposal', 'decision', 'certificate', 'outcome', 'receipt', 'abort', 'refused', 'reveal', 'pins_cleared', 'privacy_ledger']

export interface AuditEntry {
  seq: number
  /** ISO 8601 time of the append. */
  at: string
  kind: AuditKind
  /** Session ID (hex), once a certificate fixed it. */
  session?: string
  /** Proposal digest (hex). */
  proposal?: string
  data: unknown
  /** labelledHash(ENTRY_LABEL, previous line bytes), hex; 64 zeros for the first entry. */
  prev: string
}

export interface AuditHead { seq: number; hash: string; sig: string }

export const ENTRY_LABEL = 'mpc-agent/audit/v1/entry'
export const HEAD_LABEL = 'mpc-agent/audit/v1/head'
const ZERO = '0'.repeat(64)
/** Longest numeric array kept verbatim: anything longer looks like a vector and is redacted. */
const VECTOR_LIMIT = 64
/** How long an append waits for another process's append before giving up (they take ms). */
const LOCK_WAIT_MS = 5_000

export const lineHash = (line: string): string => toHex(labelledHash(ENTRY_LABEL, utf8(line)))

/** Bytes read per step when looking for the last line from the end of the log. */
const TAIL_STEP = 64 * 1024

/**
 * A handle on the audit log. It keeps only where the log ends — the last entry's seq and line hash, and how
 * many bytes it has seen — so opening it and appending cost the same after ten runs or a year of hourly
 * runs (issue 20: every `query run` used to parse and hash the whole log, and a serving agent kept every
 * entry in memory). `entries()` reads the whole file, for `audit list` only.
 */
export class AuditLog implements PolicyHistory {
  private readonly paths: HomePaths
  private readonly signer: Signer
  private seq = 0
  private last = ZERO
  /** Bytes of the file up to the end of the last complete line seen (the log only grows; a shrink means rewrite). */
  private offset = 0

  private constructor(paths: HomePaths, signer: Signer) {
    this.paths = paths
    this.signer = signer
  }

  static open(paths: HomePaths, signer: Signer): AuditLog {
    const log = new AuditLog(paths, signer)
    log.reload()
    return log
  }

  /**
   * Catch up with what other processes appended since the last look. Only the last complete line matters (its
   * seq and hash): it is found by reading backwards from the end of the file, never further back than what this
   * handle has already seen, so a first look reads one line's worth of the log, not all of it.
   */
  private reload(): void {
    const size = existsSync(this.paths.audit) ? statSync(this.paths.audit).size : 0
    if (size < this.offset) {
      this.offset = 0
      this.seq = 0
      this.last = ZERO
    }
    if (size === this.offset) return
    const fd = openSync(this.paths.audit, 'r')
    try {
      let from = size
      let tail = Buffer.alloc(0)
      // each step back reads twice as much as the last: a long last line (an abort's evidence) costs O(its length)
      for (let step = TAIL_STEP; from > this.offset; step *= 2) {
        const n = Math.min(step, from - this.offset)
        from -= n
        const piece = Buffer.alloc(n)
        readSync(fd, piece, 0, n, from)
        tail = tail.length ? Buffer.concat([piece, tail]) : piece
        // the last newline ends the last complete line (bytes after it are a line still being written);
        // empty lines are skipped, as `audit verify` does
        let end = tail.lastIndexOf(0x0a)
        while (end > 0 && tail[end - 1] === 0x0a) end--
        if (end <= 0) continue
        const start = tail.lastIndexOf(0x0a, end - 1)
        if (start < 0 && from > this.offset) continue // the line may begin further back
        const line = tail.subarray(start + 1, end).toString('utf8')
        this.seq = (JSON.parse(line) as AuditEntry).seq
        this.last = lineHash(line)
        this.offset = from + tail.lastIndexOf(0x0a) + 1
        return
      }
    } finally {
      closeSync(fd)
    }
  }

  /**
   * Append one entry and re-sign the head. Serialised across processes by `audit.jsonl.lock`.
   * `durable`: fsync the entry before returning, for entries that must precede a message (REVEAL).
   */
  append(kind: AuditKind, f: { session?: string; proposal?: string; data: unknown }, opts: { durable?: boolean } = {}): AuditEntry {
    if (!AUDIT_KINDS.includes(kind)) throw new TypeError(`unknown audit entry kind ${JSON.stringify(kind)}`)
    const lock = acquireLock(this.paths.audit, { waitMs: LOCK_WAIT_MS, what: `the audit log ${this.paths.audit}` })
    try {
      this.reload() // another process (a concurrent `query run`) may have appended
      const entry: AuditEntry = {
        seq: this.seq + 1, at: new Date().toISOString(), kind,
        ...(f.session ? { session: f.session } : {}), ...(f.proposal ? { proposal: f.proposal } : {}),
        data: redact(f.data ?? null), prev: this.last
      }
      const line = canonicalize(entry)
      if (opts.durable) {
        const fd = openSync(this.paths.audit, 'a', 0o600)
        try {
          writeSync(fd, line + '\n')
          fsyncSync(fd)
        } finally {
          closeSync(fd)
        }
      } else appendFileSync(this.paths.audit, line + '\n', { mode: 0o600 })
      this.offset += Buffer.byteLength(line) + 1
      this.seq = entry.seq
      this.last = lineHash(line)
      const stored = JSON.parse(line) as AuditEntry
      const head = { seq: this.seq, hash: this.last }
      const sig = toHex(this.signer.sign(statementDigest(HEAD_LABEL, head)))
      writeFileAtomic(this.paths.auditHead, JSON.stringify({ ...head, sig }) + '\n', 0o600)
      return stored
    } finally {
      lock.release()
    }
  }

  /** Every entry, read from the file now (`audit list`): O(log size), never on a run's path. */
  entries(): AuditEntry[] {
    return readLines(this.paths.audit).map((l) => JSON.parse(l) as AuditEntry)
  }

  /** Certificates this agent signed or received for `buyer` since `sinceMs` (policy max_runs_per_day). */
  certifiedRunsByBuyerSince(buyer: string, sinceMs: number): number {
    return this.certificatesSince(sinceMs).filter((d) => d.buyer === buyer).length
  }

  private certificatesSince(sinceMs: number): Array<Record<string, unknown>> {
    return this.entries()
      .filter((e) => e.kind === 'certificate' && Date.parse(e.at) >= sinceMs && typeof e.data === 'object' && e.data !== null)
      .map((e) => e.data as Record<string, unknown>)
  }
}


/**
 * Deepest nesting an entry keeps. Entries hold messages a peer sent (an ABORT's evidence), which the
 * decoders bound to WIRE_JSON_LIMITS.depth (96); anything deeper that reached this point anyway is
 * cut here rather than recursed into, so no input can exhaust the stack (issue 16).
 */
export const AUDIT_MAX_DEPTH = 128

/**
 * JSON-safe copy: bigints and numbers canonical JSON cannot carry as strings, typed arrays and long numeric arrays replaced by their length,
 * subtrees deeper than AUDIT_MAX_DEPTH replaced by `{redacted: 'depth'}`. Recursion bounded by it.
 */
export function redact(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return v.toString()
  // canonical JSON carries only finite, safe numbers (negotiation.md §2.2); a peer's others become text
  if (typeof v === 'number' && (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v)))) return String(v)
  if (ArrayBuffer.isView(v)) return { redacted: 'binary', length: v.byteLength }
  if (v instanceof Date) return v.toISOString()
  if (typeof v !== 'object' || v === null) return typeof v === 'function' || typeof v === 'symbol' ? undefined : v
  if (depth >= AUDIT_MAX_DEPTH) return { redacted: 'depth' }
  if (Array.isArray(v)) {
    if (v.length > VECTOR_LIMIT && v.every((x) => typeof x === 'number' || typeof x === 'bigint')) {
      return { redacted: 'vector', length: v.length }
    }
    return v.map((x) => redact(x, depth + 1) ?? null)
  }
  const out: Record<string, unknown> = {}
  // defineProperty, not assignment: a key "__proto__" must stay a key, never become a prototype
  for (const [k, x] of Object.entries(v)) if (x !== undefined && typeof x !== 'function') Object.defineProperty(out, k, { value: redact(x, depth + 1), enumerable: true, writable: true, configurable: true })
  return out
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
    const n = i + 1
    let e: AuditEntry | null = null
    try {
      e = JSON.parse(line) as AuditEntry
    } catch {
      problems.push(`line ${n}: not JSON (edited or half-written)`)
    }
    if (e) {
      let canonical = ''
      try {
        canonical = canonicalize(e)
      } catch {
        // reported just below
      }
      if (canonical !== line) problems.push(`line ${n}: not in canonical form (edited by hand?)`)
      if (e.seq !== n) problems.push(`line ${n}: sequence number ${String(e.seq)} (entries removed, inserted or reordered)`)
      if (e.prev !== prev) problems.push(`line ${n}: does not chain to the previous entry (edited, removed or reordered)`)
      if (!AUDIT_KINDS.includes(e.kind)) problems.push(`line ${n}: unknown kind ${JSON.stringify(e.kind)}`)
    }
    prev = lineHash(line)
  })
  if (!existsSync(paths.auditHead)) {
    if (lines.length) problems.push(`the signed head ${paths.auditHead} is missing (log truncated or replaced?)`)
    return { ok: problems.length === 0, entries: lines.length, problems }
  }
  let h: AuditHead
  try {
    h = JSON.parse(readFileSync(paths.auditHead, 'utf8')) as AuditHead
    if (!Number.isSafeInteger(h.seq) || typeof h.hash !== 'string' || typeof h.sig !== 'string') throw new Error('shape')
  } catch {
    problems.push(`the head file ${paths.auditHead} is unreadable`)
    return { ok: false, entries: lines.length, problems }
  }
  let sig: Uint8Array | null = null
  try {
    sig = fromHex(h.sig, 64)
  } catch {
    // reported below as a bad signature
  }
  if (!sig || !verifySignature(publicKey, statementDigest(HEAD_LABEL, { seq: h.seq, hash: h.hash }), sig)) {
    problems.push('the head is not signed by this agent\'s key (log rewritten?)')
  }
  if (h.seq !== lines.length) {
    problems.push(`the signed head covers ${h.seq} entries but the log has ${lines.length} (truncated or extended)`)
  } else if (h.hash !== prev) {
    problems.push('the signed head does not match the last entry (last entry edited or replaced)')
  }
  return { ok: problems.length === 0, entries: lines.length, problems }
}
