// Structured JSON-lines log in <home>/logs/agent.log, rotated by size (keeps N old files).
// Log lines carry events and metadata only: never raw data, vectors, seeds or keys.
import { appendFileSync, mkdirSync, renameSync, statSync, rmSync } from 'node:fs'
import { join } from 'node:path'

export const LOG_MAX_BYTES = 5 * 1024 * 1024
export const LOG_KEEP = 3

export class JsonLog {
  readonly file: string
  private readonly dir: string
  private readonly maxBytes: number
  private readonly keep: number
  constructor(dir: string, opts: { maxBytes?: number; keep?: number } = {}) {
    this.dir = dir
    this.file = join(dir, 'agent.log')
    this.maxBytes = opts.maxBytes ?? LOG_MAX_BYTES
    this.keep = opts.keep ?? LOG_KEEP
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  }

  write(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ ts: new Date().toISOString(), level, pid: process.pid, msg, ...fields }) + '\n'
    try {
      if (statSync(this.file).size + line.length > this.maxBytes) this.rotate()
    } catch {
      // no log yet
    }
    appendFileSync(this.file, line, { mode: 0o600 })
  }

  private rotate(): void {
    rmSync(`${this.file}.${this.keep}`, { force: true })
    for (let i = this.keep - 1; i >= 1; i--) {
      try {
        renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`)
      } catch {
        // gap in the sequence
      }
    }
    renameSync(this.file, `${this.file}.1`)
  }
}
