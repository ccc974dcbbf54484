// Per-agent limits a hostile but allowlisted peer cannot exceed (SECURITY.md "Limits").
/** Runs (negotiations and computations) a serving agent handles at once. */
export const MAX_CONCURRENT_RUNS = 8
/**
 * Of those, runs proposed by one peer: a peer that opens a silent negotiation stream every ~30 s
 * holds at most this many slots, so the others always keep MAX_CONCURRENT_RUNS − 3 (issue 16).
 */
export const MAX_RUNS_PER_PEER = 3
/** Negotiation streams one peer may open per minute. */
export const MAX_PROPOSALS_PER_PEER_PER_MINUTE = 30
/** Negotiation streams all peers together may open per minute (bounds nonce-store and audit growth). */
export const MAX_PROPOSALS_PER_MINUTE = 120
/** Refused streams recorded (serve output, agent.log, audit log) per peer per minute; the rest are counted. */
export const MAX_REFUSALS_RECORDED_PER_PEER_PER_MINUTE = 20
/**
 * Evidence bundles a serving agent writes per buyer per hour (README "Evidence"): each can hold up to one
 * frame (1 MiB) of the peer's messages, and a failed negotiation releases the run count it took, so
 * without this a buyer sending invalid certificates at the proposal rate could write ~2 GiB an hour.
 */
export const MAX_EVIDENCE_FILES_PER_PEER_PER_HOUR = 20
/**
 * Inbound masked-sum streams per peer per minute. A co-provider opens one stream to us per run it shares with us
 * (two when a pre-opened one is replaced), for runs of any buyer, and we take at most MAX_PROPOSALS_PER_MINUTE
 * proposals in all: 4× that. Beyond it a stream is reset unread: each costs a yamux stream, protocol selection
 * and a signed refusal.
 */
export const MAX_MASKED_SUM_STREAMS_PER_PEER_PER_MINUTE = 4 * MAX_PROPOSALS_PER_MINUTE
/** How long an inbound masked-sum stream may take to send its first frame. */
export const FIRST_FRAME_WAIT_MS = 30_000
/** Added to negotiate_s: how long a stream for an accepted proposal waits for that proposal's certificate. */
export const LATE_CERTIFICATE_MARGIN_MS = 30_000
/**
 * …and at most this long after the stream arrived: the buyer sends every certificate at once, so a
 * certificate later than a co-provider's XCHECK by this much was withheld (masked-sum.md §5.1).
 */
export const LATE_CERTIFICATE_WAIT_MS = 30_000

/** Sliding-window counter per key: `take(key)` is false once `limit` events fell in the last `windowMs`. */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>()
  private readonly limit: number
  private readonly windowMs: number
  constructor(limit: number, windowMs: number) {
    this.limit = limit
    this.windowMs = windowMs
  }

  take(key: string, now = Date.now()): boolean {
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs)
    if (recent.length >= this.limit) {
      this.hits.set(key, recent)
      return false
    }
    recent.push(now)
    this.hits.set(key, recent)
    if (this.hits.size > 10_000) for (const [k, v] of this.hits) if (!v.some((t) => t > now - this.windowMs)) this.hits.delete(k)
    return true
  }
}

/** Concurrent holders per key, bounded per key and in total (run slots). */
export class SlotPool {
  private readonly held = new Map<string, number>()
  private total = 0
  private readonly perKey: number
  private readonly max: number
  constructor(perKey: number, max: number) {
    this.perKey = perKey
    this.max = max
  }

  /** Why `key` cannot take a slot now ('key' = its own share is used up, 'total' = all are), or null after taking one. */
  take(key: string): 'key' | 'total' | null {
    const mine = this.held.get(key) ?? 0
    if (mine >= this.perKey) return 'key'
    if (this.total >= this.max) return 'total'
    this.held.set(key, mine + 1)
    this.total++
    return null
  }

  release(key: string): void {
    const mine = this.held.get(key) ?? 0
    if (mine <= 0) return
    if (mine === 1) this.held.delete(key)
    else this.held.set(key, mine - 1)
    this.total--
  }

  get size(): number {
    return this.total
  }

  heldBy(key: string): number {
    return this.held.get(key) ?? 0
  }
}
