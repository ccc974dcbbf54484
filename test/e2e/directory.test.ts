// The directory of peers end to end (protocols/directory.md): a real libp2p node on 127.0.0.1
// mounts the directory (in this process, as a relay would); agents publish and discover through
// the real CLI as separate processes. Covers: publish and discover, explicit import of one entry,
// a stranger refused by the node's allowlist, a replayed older entry and someone else's entry
// refused over the wire, a restart keeping the entries, and a tampered state file (a malicious
// directory) whose entry clients leave out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { runCli, freePort, killAll, type CliResult } from '../helpers/cli.ts'
import { createAgentNode, type AgentNode } from '../../src/net/node.ts'
import { mountDirectory, publishEntry, DirectoryRefusedError, type MountedDirectory } from '../../src/directory/index.ts'
import { homePaths, loadIdentity } from '../../src/agent/home.ts'
import { DurableStore } from '../../src/agent/store.ts'
import type { SignedPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'

let dir: string
let relayKey: PrivateKey
let relayAddr: string
let relayPort: number
let statePath: string
const logs: string[] = []
let relay: { node: AgentNode; dir: MountedDirectory } | undefined
const ids: Record<string, string> = {}
const home = (n: string): string => join(dir, n)
const cli = (n: string, args: string[], input?: string): Promise<CliResult> => runCli(['--home', home(n), ...args], { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) })

/** The relay's node: allowlist = the three members (not the stranger), directory mounted. */
async function startRelay(): Promise<void> {
  const node = await createAgentNode({ privateKey: relayKey, listen: [`/ip4/127.0.0.1/tcp/${relayPort}`], allow: new Set([ids.alpha, ids.beta, ids.city] as string[]) })
  await node.start()
  const d = await mountDirectory(node, { statePath, log: (l) => logs.push(l), minPublishIntervalMs: 0 })
  relay = { node, dir: d }
}

async function stopRelay(): Promise<void> {
  await relay?.dir.stop()
  await relay?.node.stop()
  relay = undefined
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mpc-agent-directory-'))
  statePath = join(dir, 'relay-directory.jsonl')
  await Promise.all([['alpha', 'provider'], ['beta', 'provider'], ['city', 'buyer'], ['mallory', 'provider']].map(async ([n, role]) => {
    const r = await cli(n as string, ['--json', 'init', '--name', n as string, '--role', role as string, '--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`])
    if (r.code !== 0) throw new Error(`init ${n}: ${r.stderr}`)
    ids[n as string] = (JSON.parse(r.stdout) as { peerId: string }).peerId
  }))
  writeFileSync(join(home('alpha'), 'policy.yaml'), `approval: manual\nbuyers: [${ids.city}]\ndatasets:\n  trips: { group_by_columns: [zone] }\nmin_providers: 3\nmax_cells: 5000\n`)
  relayKey = await generateKeyPair('Ed25519')
  relayPort = await freePort()
  relayAddr = `/ip4/127.0.0.1/tcp/${relayPort}/p2p/${peerIdFromPrivateKey(relayKey).toString()}`
  await startRelay()
}, 60_000)

afterAll(async () => {
  await killAll()
  await stopRelay()
  rmSync(dir, { recursive: true, force: true })
})

/** A node holding `name`'s own key, dialling only the relay (as the CLI does). */
async function nodeAs(name: string): Promise<AgentNode> {
  const node = await createAgentNode({ privateKey: loadIdentity(homePaths(home(name))).privateKey, listen: [], allow: new Set([peerIdFromPrivateKey(relayKey).toString()]) })
  await node.start()
  return node
}

describe('directory of peers', () => {
  let alphaOld: SignedPeerEntryV2

  it('agents publish their own signed entries; discover lists them, checked, and adds nobody', async () => {
    // an entry handed out earlier (older seq), kept for the replay test below
    alphaOld = JSON.parse((await cli('alpha', ['id', '--entry'])).stdout) as SignedPeerEntryV2
    const a = await cli('alpha', ['peers', 'publish', relayAddr, '--offer', '--ttl', '7d'])
    expect(a.code, a.stderr).toBe(0)
    expect(a.stdout).toMatch(/published alpha's entry to relay .* \(added; seq \d+, expires /)
    const b = await cli('beta', ['--json', 'peers', 'publish', relayAddr])
    expect(b.code, b.stderr).toBe(0)
    expect(JSON.parse(b.stdout)).toMatchObject({ peerId: ids.beta, change: 'added' })
    expect(logs.some((l) => l.includes(`added the entry of ${ids.alpha}`))).toBe(true)

    const d = await cli('city', ['peers', 'discover', relayAddr])
    expect(d.code, d.stderr).toBe(0)
    expect(d.stdout).toMatch(new RegExp(`alpha +provider +${ids.alpha}`))
    expect(d.stdout).toMatch(/datasets trips/)
    expect(d.stdout).toMatch(/policy approval=manual min_providers=3 max_cells=5000 dp_required=false/)
    expect(d.stdout).toMatch(new RegExp(`beta +provider +${ids.beta}`))
    expect(d.stderr).toMatch(/nothing was added to your allowlist/)
    expect(d.stderr).toMatch(/peers discover .* --name NAME \| mpc-agent peers import -/)
    expect(readFileSync(join(home('city'), 'config.yaml'), 'utf8')).toMatch(/peers: \[\]/)
  }, 60_000)

  it('one discovered entry joins the allowlist only through an explicit peers import', async () => {
    const d = await cli('city', ['--json', 'peers', 'discover', relayAddr, '--name', 'alpha'])
    expect(d.code, d.stderr).toBe(0)
    expect(d.stdout.trim().split('\n')).toHaveLength(1)
    const imp = await cli('city', ['peers', 'import', '-'], d.stdout)
    expect(imp.code, imp.stderr).toBe(0)
    expect(imp.stderr).toMatch(new RegExp(`added +alpha: provider ${ids.alpha}`))
    const cfg = readFileSync(join(home('city'), 'config.yaml'), 'utf8')
    expect(cfg).toContain(ids.alpha)
    expect(cfg).not.toContain(ids.beta)
    const none = await cli('city', ['peers', 'discover', relayAddr, '--name', 'nobody'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/has no valid entry named "nobody"/)
  }, 60_000)

  it('a stranger (not on the node\'s allowlist) cannot publish: the node\'s gater refuses it before the directory', async () => {
    const p = await cli('mallory', ['peers', 'publish', relayAddr])
    expect(p.code).toBe(5)
    expect(p.stderr).toMatch(/peer relay 12D3KooW\S+ is unreachable: .* the relay's allowlist probably does not have this agent/)
    expect(relay?.dir.registry.list().entries.map((e) => e.peerId)).not.toContain(ids.mallory)
  }, 60_000)

  it('over the wire: a replayed older entry and someone else\'s entry are refused', async () => {
    const node = await nodeAs('alpha')
    try {
      const label = 'relay R'
      const stale = await publishEntry(node, multiaddr(relayAddr), alphaOld, { label }).catch((e: unknown) => e)
      expect(stale).toBeInstanceOf(DirectoryRefusedError)
      expect((stale as DirectoryRefusedError).code).toBe('stale')
      const betaEntry = relay?.dir.registry.list().entries.find((e) => e.peerId === ids.beta) as SignedPeerEntryV2
      const theirs = await publishEntry(node, multiaddr(relayAddr), betaEntry, { label }).catch((e: unknown) => e)
      expect((theirs as DirectoryRefusedError).code).toBe('not_yours')
    } finally {
      await node.stop()
    }
  }, 60_000)

  it('a restart keeps the entries; an entry altered in the directory\'s state is left out by clients', async () => {
    await stopRelay()
    // the directory's operator (or whoever holds its disk) rewrites beta's addresses
    const store = DurableStore.open(statePath)
    const beta = store.get('dir.entry', ids.beta as string)
    expect(beta).toBeDefined()
    const forged = { ...(beta?.val as SignedPeerEntryV2), addrs: [`/ip4/10.6.6.6/tcp/41001/p2p/${ids.beta}`] }
    store.put('dir.entry', ids.beta as string, beta?.exp as number, forged)
    expect(readFileSync(statePath, 'utf8')).toContain('10.6.6.6')
    await startRelay()
    const d = await cli('city', ['peers', 'discover', relayAddr])
    expect(d.code, d.stderr).toBe(0)
    expect(d.stdout).toMatch(new RegExp(`alpha +provider +${ids.alpha}`))
    expect(d.stdout).not.toMatch(/10\.6\.6\.6/)
    expect(d.stderr).toMatch(new RegExp(`warning: relay .* served an entry that fails a check here, left out: entry of ${ids.beta}: the signature of beta's entry does not verify`))
    // a republish replaces the bad entry
    expect((await cli('beta', ['peers', 'publish', relayAddr])).code).toBe(0)
    const again = await cli('city', ['peers', 'discover', relayAddr])
    expect(again.stdout).toMatch(new RegExp(`beta +provider +${ids.beta}`))
    expect(again.stderr).not.toMatch(/warning/)
  }, 60_000)
})
