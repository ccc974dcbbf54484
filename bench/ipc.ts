// The IPC between bench/run.ts (the driver) and each bench/agent.ts process. Every request carries
// a `seq`; the agent answers it exactly once with the same `seq`.

/** private: secure with the query's privacy section on (each provider adds its noise share before masking). */
export type Mode = 'secure' | 'plain' | 'private'

/** One timed run as every party sees it: its id, mode, length and who takes part. */
export interface RunSpec {
  run: number
  mode: Mode
  length: number
  /** Provider peer IDs, canonically sorted. */
  providers: string[]
  buyer: string
  /**
   * Sample memory every 5 ms. Only in the extra, untimed memory runs of each cell: one
   * process.memoryUsage() costs 0.4–1.1 ms in an agent's heap here, so sampling in the timed runs
   * added 10–20 % CPU to every party and slowed longer (secure) runs more than short ones.
   */
  sampleMemory: 'none' | 'peak' | 'live'
}

export type Request =
  | { cmd: 'init' }
  /** Allowlist these peers and remember their addresses (no dial). */
  | { cmd: 'connect'; peers: Array<{ id: string; addr: string }> }
  /** Open (or reuse) a libp2p connection to each peer, `concurrency` at a time. */
  | { cmd: 'dial'; peers: string[]; concurrency: number }
  /** Outside every timed window: a provider copies its input vector for `run`; everyone collects garbage and records idle memory. */
  | { cmd: 'prepare'; run: number; length: number; seed: number | null }
  /** Buyer: do the run, answer at its end. */
  | ({ cmd: 'run' } & RunSpec)
  /** Provider: get ready for the run (wait for the buyer's streams) and answer at once. */
  | ({ cmd: 'arm' } & RunSpec)
  /** Provider: answer when the armed run has ended. */
  | { cmd: 'collect'; run: number }
  | { cmd: 'exit' }

export interface Memory {
  array_buffers: number
  heap_used: number
  rss: number
  /** array_buffers + heap_used of one sample (the peak is of the sum, not the sum of peaks). */
  sum: number
}

/** What one party measured in one run. */
export interface RunStats {
  role: 'buyer' | 'provider'
  mode: Mode
  /**
   * The timed window, on this party's clock. Buyer, secure: certificate in hand → runBuyer returned
   * the total; buyer, plain: starts opening its streams → every chunk summed and the streams closed.
   * Provider, secure: its certificate verified → runProvider returned; provider, plain: armed → done.
   */
  wall_ms: number
  /** Buyer, secure only: createProposal → certificate in hand. */
  negotiation_ms: number | null
  /** CPU seconds (user + system) of this process in the timed window. */
  cpu_s: number
  /** CPU seconds of this process during negotiation (secure only). */
  cpu_negotiation_s: number | null
  /** Frame bytes (length prefix included) this party sent / received in the timed window. */
  bytes_sent: number
  bytes_received: number
  /** Of bytes_sent, the CHUNK frames (the vector itself, length prefix included). */
  chunk_bytes_sent: number
  /** Frame bytes this party sent during negotiation (secure only). */
  negotiation_bytes_sent: number
  /** Phase events and bench marks, ms from the start of this party's timed window. */
  marks: Record<string, number>
  /** The runner's own `stats` if its result carries them (numbers only), else null. */
  stats: Record<string, number> | null
  /** Idle: after gc, before the run. Peak: sampled every 5 ms through the run (memory runs only; else
   *  one sample at the end) plus once at its end. */
  /**
   * live: the largest of samples taken right after a full gc() every 25 ms ('live' memory runs), and
   * floor the smallest sample of the run (Infinity if none): gc() before a run does not always release
   * the previous run's buffers at once, so "above idle" is measured from min(idle, floor).
   */
  memory: { idle: Memory; peak: Memory; live: Memory; floor: number }
}

export type Reply = { seq: number; ok: string; error?: string } & Record<string, unknown>
