// The agent's one durable store (docs: protocols/negotiation.md §6.3 "Local state"): proposal
// nonces, differencing pins, run counts and, later, privacy budgets live in one append-only
// journal per agent home (`state.jsonl`). Every change is one JSON line, written and fsync'ed before
// the call returns, so whatever depends on it (ACCEPT, REVEAL) is sent only after it is on disk.
//
// - Atomic reservation: `transact()` holds `state.jsonl.lock` (also against other processes of the
//   same home, e.g. `mpc-agent pins clear`), re-reads what others appended, lets the caller decide
//   on the current state and appends its changes as ONE line. Within a process every call is
//   synchronous, so two concurrent proposals cannot interleave between check and write.
// - Crash-safe replay: the state is the journal replayed from the start. A torn LAST line (a crash
//   mid-write) was never acknowledged: it is dropped and cut off. A bad line anywhere else means the
//   file was edited or damaged: the store refuses to open (a lost nonce or pin would let a replay or
//   a differencing attack through).
// - Compaction: expired entries are dropped by rewriting the journal atomically (temporary file,
//   fsync, rename) when it holds many more lines than live entries, and on open.
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readSync, statSync, ftruncateSync, writeSync } from 'node:fs'
import { acquireLock, writeFileAtomic } from './files.ts'

export const STORE_FORMAT = 'mpc-agent/state'
export const STORE_VERSION = 1
/** How long a transaction waits for another process's transaction (they take milliseconds). */
const LOCK_WAIT_MS = 5_000
/** Compact when the journal has this many lines more than twice the live entries. */
const COMPACT_SLACK = 1_000

export class StoreError extends Error {
  override name = 'StoreError'
}

/** One live entry: a namespace ("nonce", "pin", …), a key, an expiry (ms since epoch) and a JSON value. */
export interface StoreEntry {
  ns: string
  key: string
  /** Dropped (and ignored) once `exp` < now. */
  exp: number
  val: unknown
}

/** One change in a journal line: put (with exp and val) or delete. */
export type StoreOp =
  | { op: 'put'; ns: string; key: string; exp: number; val?: unknown }
  | { op: 'del'; ns: string; key: string }

/** Read-only view handed to a transaction. */
export interface StoreView {
  get(ns: string, key: string): StoreEntry | undefined
  list(ns: string): StoreEntry[]
  count(ns: string): number
  now: number
}

interface Line { t: number; ops: StoreOp[] }

export class DurableStore implements StoreView {
  readonly path: string
  private readonly clock: () => number
  private readonly spaces = new Map<string, Map<string, StoreEntry>>()
  /** Bytes of the journal already replayed, and the file's identity (a compaction replaces it). */
  private offset = 0
  private ino = -1
  private lines = 0

  private constructor(path: string, clock: () => number) {
    this.path = path
    this.clock = clock
  }

  /** Open (creating if absent) and replay the journal; compacts it when worthwhile. */
  static open(path: string, opts: { now?: () => number } = {}): DurableStore {
    const s = new DurableStore(path, opts.now ?? Date.now)
    const lock = acquireLock(path, { waitMs: LOCK_WAIT_MS, what: `the state store ${path}` })
    try {
      s.reload()
      if (s.lines > s.live() || s.lines === 0) s.compactLocked()
    } finally {
      lock.release()
    }
    return s
  }

  get now(): number {
    return this.clock()
  }

  get(ns: string, key: string): StoreEntry | undefined {
    const e = this.spaces.get(ns)?.get(key)
    return e && e.exp >= this.clock() ? e : undefined
  }

  list(ns: string): StoreEntry[] {
    const now = this.clock()
    return [...(this.spaces.get(ns)?.values() ?? [])].filter((e) => e.exp >= now)
  }

  count(ns: string): number {
    return this.list(ns).length
  }

  /** Pick up what another process appended (cheap when nothing changed). */
  refresh(): void {
    const lock = acquireLock(this.path, { waitMs: LOCK_WAIT_MS, what: `the state store ${this.path}` })
    try {
      this.reload()
    } finally {
      lock.release()
    }
  }

  /**
   * Decide on the current state and record the decision durably, atomically: `fn` sees every
   * change made so far (by this or any other process of this home) and returns the changes to
   * append (none: nothing is written). They are on disk (fsync) when this returns.
   */
  transact<T>(fn: (view: StoreView) => { ops: StoreOp[]; result: T }): T {
    const lock = acquireLock(this.path, { waitMs: LOCK_WAIT_MS, what: `the state store ${this.path}` })
    try {
      this.reload()
      const { ops, result } = fn(this)
      if (ops.length) this.append(ops)
      if (this.lines > 2 * this.live() + COMPACT_SLACK) this.compactLocked()
      return result
    } finally {
      lock.release()
    }
  }

  put(ns: string, key: string, exp: number, val?: unknown): void {
    this.transact(() => ({ ops: [{ op: 'put', ns, key, exp, val }], result: undefined }))
  }

  delete(ns: string, key: string): void {
    this.transact(() => ({ ops: [{ op: 'del', ns, key }], result: undefined }))
  }

  /** Rewrite the journal with only the live entries (atomic: temporary file, fsync, rename). */
  compact(): void {
    const lock = acquireLock(this.path, { waitMs: LOCK_WAIT_MS, what: `the state store ${this.path}` })
    try {
      this.reload()
      this.compactLocked()
    } finally {
      lock.release()
    }
  }

  /** Lines in the journal (tests, diagnostics). */
  get journalLines(): number {
    return this.lines
  }

  /** Unexpired entries. */
  private live(): number {
    const now = this.clock()
    let n = 0
    for (const m of this.spaces.values()) for (const e of m.values()) if (e.exp >= now) n++
    return n
  }

  private apply(line: Line): void {
    for (const op of line.ops) {
      let m = this.spaces.get(op.ns)
      if (!m) this.spaces.set(op.ns, (m = new Map()))
      if (op.op === 'del') m.delete(op.key)
      else m.set(op.key, { ns: op.ns, key: op.key, exp: op.exp, val: op.val ?? null })
    }
  }

  private append(ops: StoreOp[]): void {
    for (const op of ops) {
      if (typeof op.ns !== 'string' || !op.ns || typeof op.key !== 'string' || !op.key) throw new TypeError('expected a non-empty namespace and key')
      if (op.op === 'put' && !Number.isFinite(op.exp)) throw new TypeError(`expected a finite expiry time, got ${op.exp}`)
    }
    const line: Line = { t: this.clock(), ops }
    const bytes = Buffer.from(JSON.stringify(line) + '\n')
    const fd = openSync(this.path, 'a', 0o600)
    try {
      writeSync(fd, bytes)
      fsyncSync(fd) // before anything that depends on this line is sent
      this.ino = fstatSync(fd).ino
    } finally {
      closeSync(fd)
    }
    this.offset += bytes.length
    this.lines++
    this.apply(line)
  }

  private reset(): void {
    this.spaces.clear()
    this.offset = 0
    this.lines = 0
  }

  /**
   * Replay what is new in the journal; a replaced file (compaction elsewhere) is replayed whole.
   * Called only under the lock, so a line without its newline is a crash's torn write, not one in progress.
   */
  private reload(): void {
    if (!existsSync(this.path)) {
      this.reset()
      this.ino = -1
      return
    }
    const st = statSync(this.path)
    if (st.ino !== this.ino || st.size < this.offset) {
      this.reset()
      this.ino = st.ino
    }
    if (st.size === this.offset) return
    const fd = openSync(this.path, 'r+')
    try {
      const chunk = Buffer.alloc(st.size - this.offset)
      readSync(fd, chunk, 0, chunk.length, this.offset)
      const end = chunk.lastIndexOf(0x0a)
      const complete = end < 0 ? '' : chunk.subarray(0, end).toString('utf8')
      const rows = complete ? complete.split('\n') : []
      rows.forEach((text, i) => {
        const line = parseLine(text)
        if (line === 'header') {
          if (this.offset === 0 && i === 0) return
          throw new StoreError(`state store ${this.path} is corrupt (a header in the middle): restore it from a backup; deleting it would forget answered proposals and differencing pins`)
        }
        if (!line) {
          throw new StoreError(`state store ${this.path} is corrupt (line ${this.lines + i + 1} is not a journal entry): restore it from a backup; deleting it would forget answered proposals and differencing pins`)
        }
        this.apply(line)
      })
      this.lines += rows.filter((r) => parseLine(r) !== 'header').length
      const used = end + 1
      if (used < chunk.length) {
        // a torn last line: the write never completed, so nobody acted on it; cut it off so the
        // next append starts on a line of its own
        ftruncateSync(fd, this.offset + used)
        fsyncSync(fd)
      }
      this.offset += used
    } finally {
      closeSync(fd)
    }
  }

  private compactLocked(): void {
    const now = this.clock()
    for (const m of this.spaces.values()) for (const [k, e] of m) if (e.exp < now) m.delete(k)
    const ops: StoreOp[] = []
    for (const m of this.spaces.values()) for (const e of m.values()) ops.push({ op: 'put', ns: e.ns, key: e.key, exp: e.exp, val: e.val })
    const header = JSON.stringify({ format: STORE_FORMAT, v: STORE_VERSION }) + '\n'
    // one line per live entry, so a later torn line never takes a whole batch of old state with it
    const body = ops.map((op) => JSON.stringify({ t: now, ops: [op] } satisfies Line) + '\n').join('')
    writeFileAtomic(this.path, header + body, 0o600)
    const st = statSync(this.path)
    this.ino = st.ino
    this.offset = st.size
    this.lines = ops.length
  }
}

function parseLine(text: string): Line | 'header' | null {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null
  const r = o as Record<string, unknown>
  if (r.format === STORE_FORMAT) {
    if (r.v !== STORE_VERSION) return null
    return 'header'
  }
  if (typeof r.t !== 'number' || !Array.isArray(r.ops)) return null
  for (const op of r.ops as unknown[]) {
    if (typeof op !== 'object' || op === null) return null
    const x = op as Record<string, unknown>
    if (typeof x.ns !== 'string' || typeof x.key !== 'string') return null
    if (x.op === 'put' ? typeof x.exp !== 'number' : x.op !== 'del') return null
  }
  return r as unknown as Line
}
