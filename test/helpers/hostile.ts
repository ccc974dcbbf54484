// Hostile frames an allowlisted peer may send (issue 16): shared by the deviant CLI entry point and
// the e2e tests that send them over real streams.

/** An ABORT frame (0x7f) with this raw JSON body. */
export function abortFrame(json: string): Uint8Array {
  return Uint8Array.from([0x7f, ...new TextEncoder().encode(json)])
}
/** An ABORT body's raw JSON, with some fields' raw JSON replaced (unsigned: a malformed or unverified abort). */
export function abortJson(raw: Record<string, string> = {}): string {
  const f: Record<string, string> = {
    type: '"abort"', session: 'null', reason: '"bad_vector"', accused: 'null', detail: '"hostile"', by: '"x"', evidence: 'null', sig: `"${'00'.repeat(64)}"`, ...raw
  }
  return '{' + Object.entries(f).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',') + '}'
}

export const nestedArrays = (n: number): string => '['.repeat(n) + ']'.repeat(n)
