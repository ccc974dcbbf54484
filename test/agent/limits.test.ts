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

describe('run slots (issue 16)', () => {
  it('bounds each key and the total; a released slot is taken again', async () => {
    const { SlotPool } = await import('../../src/agent/limits.ts')
    const s = new SlotPool(3, 8)
    expect([1, 2, 3].map(() => s.take('mallory'))).toEqual([null, null, null])
    expect(s.take('mallory')).toBe('key') // its own share is used up, the others' is not
    expect([1, 2, 3, 4, 5].map(() => s.take(`p${Math.random()}`))).toEqual([null, null, null, null, null])
    expect(s.take('city')).toBe('total')
    s.release('mallory')
    expect(s.heldBy('mallory')).toBe(2)
    expect(s.take('city')).toBe(null)
    s.release('nobody') // releasing what was never taken changes nothing
    expect(s.size).toBe(8)
  })
})
