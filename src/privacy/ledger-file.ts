// A simple file-backed LedgerStore (JSON lines, fsync per append) — the reference store for tests and a fallback
// until the ledger sits on the agent's durable store. Single writer per file (the agent owns its home).
// A torn last line (a crash mid-write, no trailing newline) is cut off on replay: its append never resolved, so
// no message depended on it. Any other malformed line is an error (LedgerError), never silently skipped.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs'
import { LedgerError, parseLedgerRecord, type LedgerRecord, type LedgerStore } from './ledger.ts'

export class FileLedgerStore implements LedgerStore {
  private readonly path: string
  constructor(path: string) {
    this.path = path
  }
  append(record: LedgerRecord): Promise<void> {
    const fd = openSync(this.path, 'a', 0o600)
    try {
      writeSync(fd, `${JSON.stringify(record)}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return Promise.resolve()
  }
  replay(): Promise<LedgerRecord[]> {
    if (!existsSync(this.path)) return Promise.resolve([])
    const text = readFileSync(this.path, 'utf8')
    const lines = text.split('\n')
    const torn = lines.pop() ?? '' // '' when the file ends with a newline; else an unfinished append
    if (torn !== '') truncateSync(this.path, Buffer.byteLength(text, 'utf8') - Buffer.byteLength(torn, 'utf8')) // so the next append starts a fresh line
    const out: LedgerRecord[] = []
    lines.forEach((line, i) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(line)
      } catch {
        throw new LedgerError(`${this.path}:${i + 1}: not a JSON ledger record`)
      }
      out.push(parseLedgerRecord(parsed))
    })
    return Promise.resolve(out)
  }
}
