// Files a scheduled job can trust: atomic writes (temporary file + rename, never a partial file)
// and an exclusive lock per output with stale-owner takeover.
import { openSync, writeSync, closeSync, renameSync, rmSync, readFileSync, fsyncSync } from 'node:fs'
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

/**
 * Take `<target>.lock` exclusively (O_EXCL). A lock whose owner PID is dead is stale and taken
 * over; a live owner means another run writes the same output: BusyError (exit 7).
 */
export function acquireLock(target: string): Lock {
  const path = `${target}.lock`
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }))
      closeSync(fd)
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
      let owner: { pid?: number; since?: string } = {}
      try {
        owner = JSON.parse(readFileSync(path, 'utf8')) as typeof owner
      } catch {
        // unreadable or half-written lock: treat as stale
      }
      if (owner.pid && processAlive(owner.pid)) {
        throw new BusyError(`another run (pid ${owner.pid}, since ${owner.since}) is writing ${target}; wait for it, or remove ${path} if that process is not mpc-agent`)
      }
      rmSync(path, { force: true }) // stale: owner is dead
    }
  }
  throw new BusyError(`could not take the lock ${path}; remove it if no mpc-agent run is active`)
}
