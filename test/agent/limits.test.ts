import { describe, expect, it } from 'vitest'
import { RateLimiter } from '../../src/agent/limits.ts'

describe('rate limiter', () => {
  it('allows `limit` events per window per key, then refuses until the window slides', () => {
    const r = new RateLimiter(3, 1000)
    expect([0, 10, 20].map((t) => r.take('a', t))).toEqual([true, true, true])
    expect(r.take('a', 30)).toBe(false)
    expect(r.take('b', 30)).toBe(true) // per key
    expect(r.take('a', 1005)).toBe(true) // the event at 0 left the window
    expect(r.take('a', 1006)).toBe(false)
  })
})
