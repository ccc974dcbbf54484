// Files a scheduled job can trust: atomic writes (temporary file + rename, never a partial file)
// and an exclusive lock per output with stale-owner takeover.
import { openSync, writeSync, closeSync, renameSync, rmSync, readFileSync, fsyncSync, statSync } from 'node:fs'
import { dirname, basename, join } from 'node:path'
import { BusyError } from './errors.ts'

const pending = new Set<string>()

/** Write `data` to `path` atomically; the temporary file is removed if we die before the rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  pending.add(tmp)
  try {
    const fd = openSync(tmp, 'w', mode)
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } finally {
    rmSync(tmp, { force: true })
    pending.delete(tmp)
  }
}

/** Remove any half-written temporaries (called on SIGINT/SIGTERM before exiting). */
export function cleanupPending(): void {
  for (const t of pending) rmSync(t, { force: true })
  pending.clear()
}

export interface Lock {
  path: string
  release(): void
}

/** Whether a process with this PID exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** An empty lock file older than this is stale (its owner died between open and write). */
const STALE_EMPTY_MS = 2_000

/**
 * Take `<target>.lock` exclusively (O_EXCL), waiting up to `waitMs` (0: fail at once, as a run on an
 * output does: exit 7). A lock is taken over only when it is stale: its recorded PID is dead, or it
 * is still empty after STALE_EMPTY_MS. An empty or just-removed lock is someone between open and
 * write, so it counts as held (taking it over then would let two owners in).
 */
export function acquireLock(target: string, opts: { waitMs?: number; what?: string } = {}): Lock {
  const path = `${target}.lock`
  const deadline = Date.now() + (opts.waitMs ?? 0)
  const nap = new Int32Array(new SharedArrayBuffer(4))
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }))
      } finally {
        closeSync(fd)
      }
      let released = false
      return {
        path,
        release() {
          if (released) return
          released = true
          rmSync(path, { force: true })
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    let text = ''
    let ageMs = 0
    try {
      text = readFileSync(path, 'utf8')
      ageMs = Date.now() - statSync(path).mtimeMs
    } catch {
      continue // released between our open and read: try again at once
    }
    let owner: { pid?: number; since?: string } = {}
    try {
      owner = JSON.parse(text) as typeof owner
    } catch {
      // empty or half-written: its owner is writing it right now (or died doing so)
    }
    const stale = owner.pid ? !processAlive(owner.pid) : ageMs > STALE_EMPTY_MS
    if (stale) {
      try {
        if (readFileSync(path, 'utf8') === text) rmSync(path, { force: true })
      } catch {
        // already gone
      }
      continue
    }
    if (Date.now() >= deadline) {
      throw new BusyError(`another run (pid ${owner.pid ?? '?'}${owner.since ? `, since ${owner.since}` : ''}) is writing ${opts.what ?? target}; wait for it, or remove ${path} if that process is not mpc-agent`)
    }
    Atomics.wait(nap, 0, 0, 1 + Math.floor(Math.random() * 4))
  }
}
