// Transferable evidence (masked-sum.md §8.1, negotiation.md §4.5): which accusations a third party
// can check offline with only the parties' public keys (their peer IDs), and the checks themselves.
// Pure and synchronous. Used twice: before an agent signs or records an abort (settle: an accusation
// its evidence does not prove becomes a dispute), and by `mpc-agent evidence verify`.
import { equalBytes, toHex } from '../crypto/bytes.ts'
import { LABEL, signedBy, verifyBody, xcheckDigest, type InclusionMsg, type XcertMsg, type XcheckMsg } from './masked-sum-messages.ts'
import { abortShapeProblem, abortSignatureValid, describeAbort, MAX_EVIDENCE_SIGNATURES, type AbortMessage } from './abort.ts'
import { ProtocolAbort, type AbortInfo } from './errors.ts'
import { verifyCertificate, verifyCertificateSignature, type Certificate } from './negotiation-messages.ts'
import type { Query } from '../query/types.ts'

/** What a certificate says, and whether its buyer signed it (the agent's verifyCertificateSignature). */
export interface CertificateSummary {
  session: Uint8Array
  proposal: Uint8Array
  buyer: string
  /** The buyer's signature over `session` verifies. */
  buyerSigned: boolean
  /** The providers it certifies, canonical order, when the format carries them. */
  providers?: string[]
}

export interface EvidenceDeps {
  inspectCertificate(c: unknown): CertificateSummary | null
  /**
   * Negotiation (check of negotiation.md §4.3): null when `c` is a valid certificate or is not
   * signed by its buyer at all; else the fault of a certificate its buyer did sign.
   */
  certificateFault?(c: unknown): string | null
}

/**
 * Evidence checks for real certificates (negotiation.md §4.3). A certificate whose body its buyer
 * signed is the buyer's statement: any fault in it is the buyer's. Checked as of the proposal's
 * creation time, so a later reader does not see it as expired.
 */
export function certificateEvidence(checkQuery: (raw: unknown) => Query): EvidenceDeps {
  return {
    inspectCertificate: (c) => {
      try {
        return verifyCertificateSignature(c)
      } catch {
        return null
      }
    },
    certificateFault: (c) => {
      const created = (c as Certificate | null)?.body?.proposal?.proposal?.created
      try {
        verifyCertificate(c, { checkQuery, now: () => (typeof created === 'number' ? created : 0) })
        return null
      } catch (e) {
        return e instanceof ProtocolAbort ? `${e.reason}: ${e.info.detail}` : null
      }
    }
  }
}

/** The tagged evidence an accusation may carry (masked-sum.md §8.1). */
export type Evidence =
  | { kind: 'certificates'; ours: unknown; theirs: unknown } // check 3: two buyer-signed certificates, one proposal
  | { kind: 'xcert'; xcheck: XcheckMsg; xcert: XcertMsg } // check 3': a co-provider's own signed claims disagree
  | { kind: 'inclusion'; inclusion: InclusionMsg; certificate?: unknown } // check 7: the buyer's signed INCLUSION
  | { kind: 'certificate'; certificate: unknown } // negotiation: a buyer-signed, invalid certificate

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const short = (h: string): string => `${h.slice(0, 16)}…`

/**
 * Does `evidence` prove that `accused` is at fault, as `by` claims in `session` (hex)? The reason
 * why, or null. Never throws on hostile input.
 */
export function proof(a: { accused: string | null; by: string; evidence: unknown; session: string | null }, deps: EvidenceDeps): string | null {
  try {
    return proofOf(a, deps)
  } catch {
    return null
  }
}

function proofOf(a: { accused: string | null; by: string; evidence: unknown; session: string | null }, deps: EvidenceDeps): string | null {
  const { accused, by, session } = a
  const e = a.evidence
  if (!accused || !isObj(e) || typeof e.kind !== 'string') return null
  switch (e.kind) {
    case 'certificates': {
      const x = deps.inspectCertificate(e.ours)
      const y = deps.inspectCertificate(e.theirs)
      if (!x || !y || !x.buyerSigned || !y.buyerSigned || x.buyer !== accused || y.buyer !== accused) return null
      if (!equalBytes(x.proposal, y.proposal) || equalBytes(x.session, y.session)) return null
      return `${accused} signed two different certificates (sessions ${short(toHex(x.session))} and ${short(toHex(y.session))}) for one proposal ${short(toHex(x.proposal))}`
    }
    case 'xcert': {
      const xc = e.xcheck as XcheckMsg
      const xt = e.xcert as XcertMsg
      if (!isObj(xc) || !isObj(xt) || typeof xc.session !== 'string' || typeof xt.session !== 'string') return null
      if (!signedBy(xc, LABEL.xcheck, accused, by, xc.session) || !signedBy(xt, LABEL.xcert, accused, by, xt.session)) return null
      if (session !== null && xc.session === session) return null // it claimed our own session: no check-3' finding
      // the XCERT must name this very XCHECK (4.0.0): the accused then bound the two together itself; an XCERT
      // naming another XCHECK (of another run, say) beside this one proves nothing
      if (xt.xcheck !== xcheckDigest(xc)) return null
      if (xt.session !== xc.session) return `${accused} signed an XCHECK for session ${short(xc.session)} and, naming that XCHECK, an XCERT for another session ${short(xt.session)}`
      const c = deps.inspectCertificate(xt.certificate)
      if (!c || !c.buyerSigned || toHex(c.session) !== xc.session) return `${accused} signed an XCHECK for session ${short(xc.session)} but showed no certificate its buyer signed for that session`
      if (toHex(c.proposal) !== xc.proposal) return `${accused} signed an XCHECK naming proposal ${short(xc.proposal)} but showed a certificate for another proposal`
      return null
    }
    case 'inclusion': {
      const m = e.inclusion as InclusionMsg
      if (!isObj(m) || !Array.isArray(m.entries) || typeof m.session !== 'string') return null
      if (session !== null && m.session !== session) return null
      if (!signedBy(m, LABEL.inclusion, accused, by, m.session)) return null
      for (const raw of m.entries as unknown[]) {
        const x = raw as Obj
        if (!isObj(x) || typeof x.provider !== 'string' || typeof x.hash !== 'string' || typeof x.sig !== 'string' ||
          !Number.isSafeInteger(x.length) || !Number.isSafeInteger(x.chunks)) return `${accused} signed an INCLUSION with a malformed entry`
        const done = { v: 4, type: 'done', session: m.session, provider: x.provider, to: accused, length: x.length, chunks: x.chunks, hash: x.hash }
        if (!verifyBody(x.provider, LABEL.done, done, x.sig)) return `${accused} signed an INCLUSION whose entry for ${x.provider} does not carry ${x.provider}'s signature on a DONE`
      }
      if (e.certificate !== undefined) {
        const c = deps.inspectCertificate(e.certificate)
        if (c && c.buyerSigned && c.buyer === accused && toHex(c.session) === m.session && c.providers) {
          const listed = (m.entries as unknown as Obj[]).map((x) => x.provider)
          if (listed.length !== c.providers.length || listed.some((p, i) => p !== c.providers?.[i])) {
            return `${accused} signed an INCLUSION listing ${listed.length} vectors, not exactly the ${c.providers.length} providers of the certificate it signed`
          }
        }
      }
      return null
    }
    case 'certificate': {
      const c = deps.inspectCertificate(e.certificate)
      if (!c || !c.buyerSigned || c.buyer !== accused || !deps.certificateFault) return null
      const fault = deps.certificateFault(e.certificate)
      return fault ? `${accused} signed an invalid certificate: ${fault}` : null
    }
    default:
      return null
  }
}

/**
 * The form of `info` this party may sign and record: an accusation stays only when its evidence
 * proves it (then `proven` says how); otherwise it becomes the dispute [self, accused] — or, for a
 * timeout, "no answer from accused (as seen by self)". A relay (with a cause) accuses nobody.
 */
export function settle(info: AbortInfo, self: string, session: Uint8Array | null, deps?: EvidenceDeps): AbortInfo {
  if (info.cause) return { ...info, accused: null }
  if (!info.accused || info.proven) return info
  const p = deps ? proof({ accused: info.accused, by: self, evidence: info.evidence, session: session ? toHex(session) : null }, deps) : null
  if (p) return { ...info, proven: p }
  const { accused, ...rest } = info
  return { ...rest, accused: null, disputants: info.disputants ?? (accused !== self ? [self, accused] : null) }
}

// ---- bundles (`mpc-agent evidence verify`) --------------------------------------------------------

export const BUNDLE_TYPE = 'mpc-agent/evidence-bundle'
export interface EvidenceBundle { v: 1; type: typeof BUNDLE_TYPE; abort: AbortMessage }

export function makeBundle(abort: AbortMessage): EvidenceBundle {
  return { v: 1, type: BUNDLE_TYPE, abort }
}

export interface BundleReport {
  /** `proven`: an accusation its evidence proves; `unproven`: an accusation it does not; `dispute`,
   *  `silence`, `unattributed`: no culprit claimed; `invalid`: a signature or the format fails. */
  verdict: 'proven' | 'unproven' | 'dispute' | 'silence' | 'unattributed' | 'invalid'
  session: string | null
  /** Who said what, outermost first. */
  statements: Array<{ by: string; to: string | null; reason: string; says: string; signature: 'valid' | 'invalid' }>
  proves: string[]
  doesNotProve: string[]
  signatures: number
}

/** Count signature fields iteratively (never recursion over untrusted data). */
function countSignatures(v: unknown): number {
  let n = 0
  const stack: unknown[] = [v]
  let seen = 0
  while (stack.length) {
    const x = stack.pop()
    if (++seen > 1_000_000) return Number.POSITIVE_INFINITY
    if (typeof x !== 'object' || x === null) continue
    for (const [k, c] of Object.entries(x)) {
      if ((k === 'sig' || k === 'buyer_sig') && typeof c === 'string') n++
      else stack.push(c)
    }
  }
  return n
}

export function verifyBundle(raw: unknown, deps: EvidenceDeps): BundleReport {
  const report: BundleReport = { verdict: 'invalid', session: null, statements: [], proves: [], doesNotProve: [], signatures: 0 }
  if (!isObj(raw) || raw.type !== BUNDLE_TYPE || raw.v !== 1 || !isObj(raw.abort)) {
    report.doesNotProve.push(`not an evidence bundle (expected {v: 1, type: "${BUNDLE_TYPE}", abort})`)
    return report
  }
  const shape = abortShapeProblem(raw.abort)
  if (shape) {
    report.doesNotProve.push(`the abort is malformed: ${shape}`)
    return report
  }
  const top = raw.abort as unknown as AbortMessage
  report.session = top.session
  report.signatures = countSignatures(raw)
  const chain = top.cause ? [top, top.cause] : [top]
  let ok = true
  for (const m of chain) {
    const valid = abortSignatureValid(m)
    ok &&= valid
    report.statements.push({ by: m.by, to: m.to, reason: m.reason, says: describeAbort(m), signature: valid ? 'valid' : 'invalid' })
  }
  if (!ok) {
    report.doesNotProve.push('a signature does not verify: the bundle was altered or forged, it proves nothing')
    return report
  }
  // the cause may be addressed to another party: a relay of a relay embeds the original as received
  // by the first relayer (never a chain), so only its session must match
  if (top.cause && top.cause.session !== top.session) {
    report.doesNotProve.push('the relayed cause belongs to another session')
    return report
  }
  if (report.signatures > MAX_EVIDENCE_SIGNATURES + 2) {
    report.doesNotProve.push(`the bundle holds ${report.signatures} signatures, more than evidence may (${MAX_EVIDENCE_SIGNATURES} + 2)`)
    return report
  }
  const root = chain[chain.length - 1] as AbortMessage
  if (top.cause) report.proves.push(`${top.by} relayed, without accusing anyone, the abort ${top.cause.by} had sent to ${top.cause.to ?? '(nobody)'} in session ${top.session}`)
  report.proves.push(`${root.by} signed this abort (${root.reason}) in session ${root.session ?? '(none)'}`)
  if (root.accused) {
    const p = proof({ accused: root.accused, by: root.by, evidence: root.evidence, session: root.session }, deps)
    if (p) {
      report.verdict = 'proven'
      report.proves.push(p)
      report.doesNotProve.push('anything about the other parties, or about data (the evidence holds signed messages only)')
    } else {
      report.verdict = 'unproven'
      report.doesNotProve.push(`that ${root.accused} is at fault: the evidence does not support the accusation; it rests on ${root.by}'s word`)
    }
    return report
  }
  // a no_certificate notice may not know the buyer (a co-provider's XCHECK does not name it): the
  // relaying party, which holds the certificate, names the buyer–notifier dispute
  const disputants = root.disputants ?? (root.reason === 'no_certificate' && top.disputants?.[1] === root.by ? top.disputants : null)
  if (disputants) {
    const [a, b] = disputants
    const silence = root.reason === 'timeout' || root.reason === 'unreachable'
    report.verdict = silence ? 'silence' : 'dispute'
    report.proves.push(silence ? `${root.by} reports no answer from ${b} (as seen by ${a})` : `${root.by} reports a dispute between ${a} and ${b}`)
    report.doesNotProve.push(silence ? `that ${b} was at fault: silence cannot be attributed (${a} may have been cut off, or ${b} may have been)` : `which of ${a} and ${b} is at fault: the protocol cannot attribute this check`)
    return report
  }
  report.verdict = 'unattributed'
  report.doesNotProve.push('who is at fault: this abort names nobody (masked-sum.md §8)')
  return report
}

