// Issue #8: an allowlisted but hostile peer floods a serving provider with bogus streams (garbage
// frames, oversized frames, streams that never speak) on both protocols while a legitimate run is in
// progress; the run still completes and the provider keeps serving.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { createAgentNode, type AgentNode } from '../../src/net/node.ts'
import { MASKED_SUM_PROTOCOL, NEGOTIATE_PROTOCOL } from '../../src/net/constants.ts'
import { makeCluster } from '../helpers/agents.ts'
import { makeDataCluster, expected, readResult, type DataCluster } from '../helpers/data-cluster.ts'
import { multiaddr } from '@multiformats/multiaddr'

describe('a hostile allowlisted peer floods a provider', () => {
  let dc: DataCluster
  let hostile: AgentNode
  beforeAll(async () => {
    dc = await makeDataCluster(3, 200)
    // "mallory" is a configured provider peer of p1 (allowlisted), but not part of the query
    const m = await makeCluster([{ name: 'mallory', role: 'provider' }], { dir: join(dc.dir, 'm') })
    const mal = m.byName('mallory')
    await dc.cluster.cli('p1', ['peers', 'add', 'mallory', mal.addr, '--role', 'provider'])
    for (const p of dc.providers) await dc.cluster.serve(p)
    const key = privateKeyFromProtobuf(readFileSync(join(mal.home, 'identity.key')))
    hostile = await createAgentNode({ privateKey: key, listen: [], allow: new Set([dc.cluster.byName('p1').peerId]) })
    await hostile.start()
  }, 120_000)
  afterAll(async () => {
    await hostile?.stop()
    await dc?.cluster.teardown()
  })

  it('the legitimate run completes while bogus streams keep coming', async () => {
    const target = multiaddr(dc.cluster.byName('p1').addr)
    let stop = false
    let opened = 0
    const junk = [
      new Uint8Array([0, 0, 0, 5, 0x10, 1, 2, 3, 4]), // a START that is not JSON
      new Uint8Array([0, 0, 0, 3, 0x11, 0x7b, 0x7d]), // an empty XCHECK
      new Uint8Array([0xff, 0xff, 0xff, 0xff]), // a 4 GiB frame announced
      new Uint8Array([0, 0, 0, 9, 0x01, ...new TextEncoder().encode('{"a":[[')]), // a truncated proposal
      new Uint8Array(0) // a stream that never speaks
    ]
    const flood = (async () => {
      while (!stop) {
        await Promise.all(Array.from({ length: 8 }, async (_, i) => {
          try {
            const s = await hostile.dialProtocol(target, i % 2 ? MASKED_SUM_PROTOCOL : NEGOTIATE_PROTOCOL, { signal: AbortSignal.timeout(5000) })
            opened++
            const j = junk[(opened + i) % junk.length] as Uint8Array
            if (j.length) s.send(j)
            if (opened % 3) s.abort(new Error('bye'))
          } catch {
            // refused or reset: what a provider should do with junk
          }
        }))
      }
    })()
    await new Promise((r) => setTimeout(r, 500))
    const out = join(dc.dir, 'flood.json')
    const r = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', out], { timeoutMs: 90_000 })
    stop = true
    await flood
    expect(opened).toBeGreaterThan(20)
    expect(r.code, r.stderr).toBe(0)
    const want = expected(dc.data)
    for (const c of readResult(out).cells) expect(c.values.pickups).toBe(want.get(c.key.join('|'))?.pickups ?? 0)
    expect(dc.cluster.byName('p1').proc?.exitCode).toBe(null)
    const again = await dc.cluster.cli('city', ['query', 'run', dc.queryFile, '--out', join(dc.dir, 'after.json')])
    expect(again.code, again.stderr).toBe(0)
  }, 120_000)
})
