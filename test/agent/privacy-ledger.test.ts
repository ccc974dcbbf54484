// The privacy ledger on the agent's durable store (privacy.md §8): reserve / commit / release survive a reopen,
// a reservation left by a crash is released unless committed, and `budget`'s read-only view writes nothing.
import { describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DurableStore } from '../../src/agent/store.ts'
import { PrivacyLedger, StoreLedger, budgetStatus } from '../../src/agent/privacy-ledger.ts'
import { rhoForEpsilonDelta, zcdpEpsilon } from '../../src/privacy/accounting.ts'
import type { PrivacyRules } from '../../src/policy/policy.ts'

const rho = rhoForEpsilonDelta(1, 1e-6) // one query of epsilon 1 at the budget's delta
const eps = zcdpEpsilon(2.5 * rho, 1e-6) // a budget that holds two such queries, not three (zCDP adds rho, not epsilon)
const rules: PrivacyRules = { required: true, max_epsilon_per_query: 1, budget: { epsilon: eps, delta: 1e-6, window_days: 30 }, unit: {} }
const budget = { epsilon: eps, delta: 1e-6, windowMs: 30 * 86_400_000 }

describe('privacy ledger on the durable store', () => {
  it('refuses the query that no longer fits; release on abort frees it, commit keeps it spent across a reopen', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dpl-')), 'state.jsonl')
    const { ledger } = await PrivacyLedger.open(new StoreLedger(DurableStore.open(path)))
    const req = (run: string) => ({ run, buyer: 'B', source: 'source:s', rho, budget })
    expect((await ledger.reserve(req('r1'))).ok).toBe(true)
    expect((await ledger.reserve(req('r2'))).ok).toBe(true)
    const third = await ledger.reserve(req('r3'))
    expect(third.ok).toBe(false)
    if (!third.ok) expect(third.code).toBe('privacy_budget')
    expect(await ledger.release('r2', 'aborted before reveal')).toBe(true)
    expect((await ledger.reserve(req('r3'))).ok).toBe(true)
    await ledger.commit('r1')
    expect(await ledger.release('r1', 'late abort')).toBe(false) // committed stays spent
    // "crash": reopen from disk; r3 was reserved but never committed → released by recovery; r1 stays spent
    const status = await budgetStatus(DurableStore.open(path), rules, {})
    expect(status[0]?.reservedRho).toBeCloseTo(rho) // the read-only view still sees r3 pending
    const { ledger: again, recovered } = await PrivacyLedger.open(new StoreLedger(DurableStore.open(path)))
    expect(recovered).toEqual(['r3'])
    const s = again.status(() => budget)
    expect(s[0]?.spentRho).toBeCloseTo(rho)
    expect(s[0]?.reservedRho).toBe(0)
    expect((await again.reserve(req('r4'))).ok).toBe(true)
    expect((await again.reserve(req('r5'))).ok).toBe(false)
    // a different data source has its own budget
    expect((await again.reserve({ ...req('r6'), source: 'source:other' })).ok).toBe(true)
  })
})
