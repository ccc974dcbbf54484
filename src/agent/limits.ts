// Per-agent limits a hostile but allowlisted peer cannot exceed (SECURITY.md "Limits").
/** Runs (negotiations and computations) a serving agent handles at once. */
export const MAX_CONCURRENT_RUNS = 8
/** Negotiation streams one peer may open per minute. */
export const MAX_PROPOSALS_PER_PEER_PER_MINUTE = 30

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
