// Admission state in the durable store: differencing pins and run counts are checked and written in
// one step, survive a restart, are dropped for a proposal that never got a certificate, and cleared
// only as selected.
import { describe, expect, it } from 'vitest'
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DurableStore } from '../../src/agent/store.ts'
import { AdmissionStore, sourceId } from '../../src/agent/admission.ts'

const open = (p: string): AdmissionStore => new AdmissionStore(DurableStore.open(p))
const path = (): string => join(mkdtempSync(join(tmpdir(), 'mpc-admit-')), 'state.jsonl')
const groups = ['group:default', 'source:csv:/data/t.csv']
const until = Date.now() + 60_000
const ask = (proposal: string, providers: string[], o: { buyer?: string; maxRuns?: number; pin?: boolean } = {}) => ({
  proposal, buyer: o.buyer ?? 'b1', providers, dataset: 'trips', maxRuns: o.maxRuns ?? 100,
  pin: o.pin === false ? undefined : { groups, until }
})

describe('admission store', () => {
  it('pins one provider set per group, for every buyer, and names the earlier run', () => {
    const p = path()
    const a = open(p)
    expect(a.admit(ask('p1', ['A', 'B', 'C', 'D']))).toEqual({ ok: true })
    expect(a.admit(ask('p2', ['D', 'C', 'B', 'A'], { buyer: 'b2' }))).toEqual({ ok: true }) // same set, any order
    const r = open(p).admit(ask('p3', ['B', 'C', 'D'], { buyer: 'b2' }))
    expect(r.ok).toBe(false)
    expect('conflict' in r && r.conflict.proposal).toBe('p1')
    expect(a.list().filter((x) => x.proposal === 'p1').map((x) => x.group).sort()).toEqual(groups)
  })

  it('counts runs per buyer atomically with the pin; a refused proposal records nothing', () => {
    const a = open(path())
    expect(a.admit(ask('p1', ['A', 'B', 'C'], { maxRuns: 2 })).ok).toBe(true)
    expect(a.admit(ask('p2', ['A', 'B', 'C'], { maxRuns: 2 })).ok).toBe(true)
    expect(a.admit(ask('p3', ['A', 'B', 'C'], { maxRuns: 2 }))).toEqual({ ok: false, runs: 2 })
    expect(a.admit(ask('p4', ['A', 'B', 'D'], { buyer: 'b2', maxRuns: 2 })).ok).toBe(false) // differencing
    expect(a.runsBy('b1')).toBe(2)
    expect(a.runsBy('b2')).toBe(0)
    expect(a.list().some((x) => x.proposal === 'p3' || x.proposal === 'p4')).toBe(false)
  })

  it('release drops the pins and the count of a proposal without a certificate, and nothing else', () => {
    const p = path()
    const a = open(p)
    a.admit(ask('p1', ['A', 'B', 'C']))
    a.admit(ask('p2', ['A', 'B', 'C']))
    a.release('p2')
    const b = open(p)
    expect(b.runsBy('b1')).toBe(1)
    expect(b.list().map((x) => x.proposal)).toEqual(['p1', 'p1'])
    b.release('p1')
    expect(b.admit(ask('p3', ['B', 'C', 'D'])).ok).toBe(true)
  })

  it('clear removes only what is selected; a selector is required', () => {
    const a = open(path())
    a.admit(ask('aaaa1111', ['A', 'B', 'C']))
    expect(a.clear({})).toEqual([])
    expect(a.clear({ group: 'group:default' }).map((x) => x.group)).toEqual(['group:default'])
    expect(a.admit(ask('p2', ['B', 'C', 'D'])).ok).toBe(false) // still pinned through the source group
    expect(a.clear({ proposal: 'aaaa' }).map((x) => x.group)).toEqual(['source:csv:/data/t.csv'])
    expect(a.admit(ask('p2', ['B', 'C', 'D'])).ok).toBe(true)
    expect(a.clear({ all: true })).toHaveLength(2)
  })

  it('a dataset reached through a symlink has the same source as the file itself', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpc-src-'))
    writeFileSync(join(dir, 't.csv'), 'a\n1\n')
    symlinkSync(join(dir, 't.csv'), join(dir, 'alias.csv'))
    expect(sourceId({ name: 'x', path: join(dir, 'alias.csv'), format: 'csv' })).toBe(sourceId({ name: 'y', path: join(dir, 't.csv'), format: 'csv' }))
    expect(sourceId({ name: 'x', path: join(dir, 'db'), format: 'duckdb', table: 't1' })).not.toBe(sourceId({ name: 'x', path: join(dir, 'db'), format: 'duckdb', table: 't2' }))
  })
})
