// evidence verify FILE: check an abort's evidence bundle offline (README "Evidence"): signatures,
// session, who said what, and what the bundle proves and what it does not. Needs no agent home and
// no network: a peer ID is its Ed25519 public key.
import { readFileSync, statSync } from 'node:fs'
import { ConfigError } from '../../agent/errors.ts'
import { certificateEvidence, verifyBundle, type BundleReport } from '../../protocol/evidence.ts'
import { validateQuery } from '../../query/validate.ts'
import type { Output } from '../output.ts'

/** An authentic bundle whose accusation its evidence does not prove (exit 8). */
export class EvidenceUnproven extends Error {
  override name = 'EvidenceUnproven'
}
/** Not a bundle, or a signature in it does not verify (exit 9). */
export class EvidenceInvalid extends Error {
  override name = 'EvidenceInvalid'
}

/** Bundles are at most a few MiB (one 1 MiB abort plus its cause); anything larger is refused unread. */
const MAX_BUNDLE_BYTES = 8 * 1024 * 1024

export function renderReport(file: string, r: BundleReport): string {
  const lines = [`${file}: ${r.verdict}`, `session: ${r.session ?? '(none)'}`, 'statements (outermost first):']
  for (const s of r.statements) lines.push(`  ${s.by} → ${s.to ?? '(for the record)'}: ${s.says} [signature ${s.signature}]`)
  lines.push(`signatures in the bundle: ${r.signatures}`, 'proves:')
  for (const p of r.proves) lines.push(`  - ${p}`)
  if (!r.proves.length) lines.push('  (nothing)')
  lines.push('does not prove:')
  for (const p of r.doesNotProve) lines.push(`  - ${p}`)
  return lines.join('\n')
}

export function evidenceVerify(file: string, out: Output): void {
  let raw: unknown
  try {
    if (statSync(file).size > MAX_BUNDLE_BYTES) throw new EvidenceInvalid(`${file} is larger than ${MAX_BUNDLE_BYTES} bytes: not an evidence bundle`)
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    if (e instanceof EvidenceInvalid) throw e
    if ((e as NodeJS.ErrnoException).code) throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`)
    throw new EvidenceInvalid(`${file} is not JSON: ${(e as Error).message}`)
  }
  const report = verifyBundle(raw, certificateEvidence(validateQuery))
  if (out.opts.json) out.data(report)
  else out.result(renderReport(file, report))
  if (report.verdict === 'invalid') throw new EvidenceInvalid(`${file}: ${report.doesNotProve.join('; ')}`)
  if (report.verdict === 'unproven') throw new EvidenceUnproven(`${file}: ${report.doesNotProve.join('; ')}`)
}
