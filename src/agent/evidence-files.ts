// Where an agent keeps the evidence of an abort (README "Evidence"): a bundle holding its own signed
// statement of the abort (addressed to nobody: for the record), with the evidence or the relayed
// cause inside, which `mpc-agent evidence verify FILE` checks offline. The buyer's `query run`
// writes `<out>.evidence.json` beside the output it did not write; a serving agent writes
// `<home>/evidence/<session>-<time>.json` and names the file in its audit log's abort entry.
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from './files.ts'
import { fromHex } from '../crypto/bytes.ts'
import type { Signer } from '../crypto/sign.ts'
import { signAbort } from '../protocol/abort.ts'
import { makeBundle } from '../protocol/evidence.ts'
import type { AbortInfo } from '../protocol/errors.ts'

const isHex32 = (s: string | null): s is string => s !== null && /^[0-9a-f]{64}$/.test(s)

/** Evidence as the audit log keeps it: its kind, size and SHA-256 (the bundle file holds the evidence itself). */
function evidenceSummary(e: unknown): { kind: string | null; bytes: number; sha256: string } | null {
  if (e == null) return null
  const text = JSON.stringify(e) ?? ''
  const kind = typeof e === 'object' && typeof (e as { kind?: unknown }).kind === 'string' ? (e as { kind: string }).kind : null
  return { kind, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') }
}

/**
 * An abort as its audit entry records it: everything but the evidence, which is summarised (kind, size,
 * hash), in the abort and in the cause it relays. The evidence can be up to a frame (1 MiB) of a peer's
 * messages; it is kept once, in the bundle file the entry names, not twice.
 */
export function auditedAbort(info: AbortInfo): Record<string, unknown> {
  const cause = info.cause != null && typeof info.cause === 'object'
    ? { ...(info.cause as Record<string, unknown>), evidence: evidenceSummary((info.cause as { evidence?: unknown }).evidence) }
    : info.cause ?? null
  return { ...info, evidence: evidenceSummary(info.evidence), cause }
}

/** Write the bundle of `info` (session or proposal digest, hex) to `path`. */
export function writeEvidence(path: string, signer: Signer, session: string | null, info: AbortInfo): void {
  const statement = signAbort(signer, isHex32(session) ? fromHex(session, 32) : null, null, info)
  writeFileAtomic(path, JSON.stringify(makeBundle(statement), null, 1) + '\n', 0o600)
}

/** A serving agent's bundle in `<home>/evidence/`; its path, or null when it could not be written. */
export function saveEvidence(home: string, signer: Signer, session: string | null, info: AbortInfo, log: (l: string) => void): string | null {
  try {
    const dir = join(home, 'evidence')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const path = join(dir, `${isHex32(session) ? session.slice(0, 16) : 'negotiation'}-${Date.now()}.json`)
    writeEvidence(path, signer, session, info)
    return path
  } catch (e) {
    log(`could not save the evidence of an abort: ${(e as Error).message}`)
    return null
  }
}
