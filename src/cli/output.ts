// One place that writes output. Results → stdout; logs and progress → stderr. With --json every
// line on stdout is one RunEvent (src/agent/events.ts) as NDJSON; the last is result, abort or error.
import type { RunEvent } from '../agent/events.ts'

export interface OutputOptions {
  json: boolean
  quiet: boolean
  verbose: boolean
}

/**
 * Whether this process already wrote its end event (result, abort or error). One process runs one
 * command, so this is process-wide: the scripting contract (README "--json events") is exactly one
 * end event per run, as the last line; nothing is written after it.
 */
let ended = false

export class Output {
  readonly opts: OutputOptions
  constructor(opts: OutputOptions) {
    this.opts = opts
  }

  /** A machine-readable event (NDJSON under --json; otherwise rendered by `log` when useful). */
  event(e: RunEvent): void {
    if (!this.opts.json || ended) return
    if (e.type === 'result' || e.type === 'abort' || e.type === 'error') ended = true
    process.stdout.write(JSON.stringify(e) + '\n')
  }

  /** Whether the end event was written (the error path then only prints its line on stderr). */
  get ended(): boolean {
    return ended
  }

  /** Progress and diagnostics: stderr, suppressed by --quiet and --json. */
  log(line: string): void {
    if (!this.opts.quiet && !this.opts.json) process.stderr.write(line + '\n')
  }

  /** A human result on stdout (not under --json, which emits the result event instead). */
  result(text: string): void {
    if (!this.opts.json) process.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }

  /** Structured data for `--json` commands that print one document rather than events. */
  data(value: unknown): void {
    process.stdout.write(JSON.stringify(value) + '\n')
  }

  error(message: string, exitCode: number, err?: unknown): void {
    if (this.opts.json) this.event({ v: 1, type: 'error', message, exitCode })
    process.stderr.write(`mpc-agent: ${message}\n`)
    if (this.opts.verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n')
  }
}

/** A person at a terminal (stderr is a TTY), not --json / --quiet, not CI: the ink UI may be used. */
export function interactive(out: Output): boolean {
  return process.stderr.isTTY === true && !out.opts.json && !out.opts.quiet && !process.env.CI
}
