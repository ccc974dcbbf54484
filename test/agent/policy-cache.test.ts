// serve reads policy.yaml at every proposal (an edit applies to the next one) but parses it only when
// its bytes or the names it resolves changed, and hands each caller its own copy (src/agent/context.ts).
import { describe, expect, it } from 'vitest'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import type { Agent } from '../../src/agent/agent.ts'
import { loadLocalPolicy, policyParses, resolverFor } from '../../src/agent/context.ts'

const CITY = '12D3KooWDG6inxpkPhKkz9PU2ufhZ9ThApn1AWcgKLxZhqGEWK8s'
const OTHER = '12D3KooWCoC7fcWZ9t15SsEXGKhi5YqLkZP7UBBvhwQTBSpMvqne'
const SELF = '12D3KooWEU7DpqjhcF9d3yUS9fsGBe4QSSc7ycPuPjJE28FqCpm8'

const policyText = (maxCells: number): string => `approval: auto
buyers: [city]
datasets:
  trips:
    filter_columns: [a]
    group_by_columns: [a]
    aggregate_columns: [b]
min_providers: 3
max_cells: ${maxCells}
`

describe('the provider policy cache', () => {
  it('reuses the parse while nothing changed, and re-parses on an edit or a renamed peer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpc-policy-cache-'))
    try {
      const path = join(dir, 'policy.yaml')
      const agent = {
        paths: { policy: path },
        identity: { peerId: SELF },
        config: { name: 'alpha', peers: [{ name: 'city', peerId: CITY, addr: `/ip4/127.0.0.1/tcp/1/p2p/${CITY}`, role: 'buyer' }] }
      } as unknown as Agent
      const load = () => {
        const r = loadLocalPolicy(agent, resolverFor(agent), () => {})
        if (!r.policy) throw new Error(r.error ?? 'no policy')
        return r.policy
      }
      writeFileSync(path, policyText(1000))
      const first = load()
      expect(first.buyers).toEqual([CITY])
      const parsed = policyParses()
      const again = load()
      expect(policyParses(), 'unchanged: not parsed again').toBe(parsed)
      expect(again).toEqual(first)
      // each caller has its own copy: changing one cannot reach the next decision
      first.buyers.push(OTHER)
      first.max_cells = 1
      expect(load()).toEqual(again)
      // an edit applies to the next proposal
      writeFileSync(path, policyText(2000))
      const edited = load()
      expect(policyParses()).toBe(parsed + 1)
      expect(edited.max_cells).toBe(2000)
      // a config reload that gives the name "city" to another peer re-resolves the policy's names
      ;(agent.config.peers as Array<{ peerId: string }>)[0] = { ...agent.config.peers[0], peerId: OTHER } as never
      expect(load().buyers).toEqual([OTHER])
      // an invalid edit: no policy (accepts nothing), never the last good one
      writeFileSync(path, 'approval: [\n')
      expect(loadLocalPolicy(agent, resolverFor(agent), () => {}).policy).toBeNull()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
