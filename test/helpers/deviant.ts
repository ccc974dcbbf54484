// Test-only entry point: the real CLI (same main(), same code paths) with ONE named deviation
// injected through main()'s hooks parameter. Usage:
//   node test/helpers/deviant.ts <deviation> <mpc-agent arguments...>
// It lives under test/ and is not shipped in bin/: the production binary has no flag or
// environment variable that enables any of this.
import { main, type MainHooks } from '../../src/cli/main.ts'
import { abortFrame, abortJson } from './hostile.ts'

const flip = (t: Uint8Array): Uint8Array => t.map((b) => b ^ 1)

export const DEVIATIONS: Record<string, MainHooks> = {
  // providers
  'provider:wrong-pair-key': { serve: { provider: { confirmTag: flip } } },
  'provider:duplicate-chunk': { serve: { provider: { chunkFrames: (i, f) => (i === 0 ? [f, f] : [f]) } } },
  'provider:short-vector': { serve: { provider: { chunkFrames: (i, f) => (i === 0 ? [f.subarray(0, f.length - 8)] : [f]) } } },
  'provider:wrong-mask': {
    // the last value of every chunk, which in the last chunk is a canary (masked-sum.md check 6)
    serve: { provider: { mutateChunk: (_i, _off, y) => { y[y.length - 1] = (y[y.length - 1] as bigint) + 1n } } }
  },
  'provider:wrong-seed': { serve: { provider: { revealSeed: flip } } },
  'provider:silent-xcheck': { serve: { provider: { stallAt: 'xcheck' } } },
  'provider:silent-stream': { serve: { provider: { stallAt: 'stream' } } },
  'provider:silent-reveal': { serve: { provider: { stallAt: 'reveal' } } },
  // framing (issue 16): sign a false key_confirmation_failed accusation of the first co-provider
  'provider:frame-kcf': {
    serve: { provider: { abortWith: (others) => ({ reason: 'key_confirmation_failed', accused: others[0] ?? null, detail: 'its key confirmation does not match', proven: 'forged by a deviant' }) } }
  },
  // adds 2^40 to its first data value: the total of cell 0 then exceeds any bound the layout allows
  'provider:implausible-input': { serve: { provider: { mutateChunk: (i, _off, y) => { if (i === 0) y[0] = (y[0] as bigint) + 2n ** 40n } } } },
  // buyer
  'buyer:drop-vector': {
    buyer: { inclusion: (b, p) => (p === b.entries[0]?.provider ? { ...b, entries: b.entries.map((e, i) => (i === 0 ? { ...e, hash: '00'.repeat(32) } : e)) } : b) }
  },
  'buyer:silent-inclusion': { buyer: { stallAt: 'inclusion' } },
  // proposes a run too large for a relay's data limit (its own pre-check skipped): the providers refuse it (relay_limit)
  'buyer:skip-relay-precheck': { buyer: { skipRelayPrecheck: true } },
  // hostile ABORT frames inside a run, read by each provider's background reader (issue 16)
  'buyer:abort-null': { buyer: { afterStart: () => [abortFrame('null')] } },
  'buyer:abort-tostring': { buyer: { afterStart: () => [abortFrame(abortJson({ detail: '{"toString":1}' }))] } },
  'buyer:abort-deep': { buyer: { afterStart: () => [abortFrame(abortJson({ evidence: '['.repeat(400_000) + ']'.repeat(400_000) }))] } },
  // framing (issue 16): certify the run but withhold the certificate from the first provider
  'buyer:withhold-cert': { buyer: { sendCertificate: (() => { let n = 0; return () => n++ !== 0 })() } },
  'buyer:abort-after-reveal': { buyer: { abortAfterReveal: true } },
  // a bug that lets an error escape every handler (issue 16's last resort): once serve is ready, an
  // uncaught exception and an unhandled rejection are raised in this process (below)
  'serve:uncaught': {}
}

const [deviation, ...argv] = process.argv.slice(2)
const hooks = deviation ? DEVIATIONS[deviation] : undefined
if (!hooks) {
  process.stderr.write(`deviant: unknown deviation ${JSON.stringify(deviation)}; known: ${Object.keys(DEVIATIONS).join(', ')}\n`)
  process.exitCode = 2
} else {
  if (deviation === 'serve:uncaught') {
    const ready = argv[argv.indexOf('--ready-file') + 1]
    const { existsSync } = await import('node:fs')
    const poll = setInterval(() => {
      if (!ready || !existsSync(ready)) return
      clearInterval(poll)
      setTimeout(() => { throw new Error('deviant: an uncaught exception') }, 10)
      setTimeout(() => { void Promise.reject(new Error('deviant: an unhandled rejection')) }, 20)
    }, 20)
  }
  process.exitCode = await main(argv, hooks)
}
