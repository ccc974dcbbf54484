// The directory of peers end to end (protocols/directory.md): `mpc-agent relay serve` on 127.0.0.1
// serves it; agents publish and discover through the real CLI, every party a separate process.
// Covers: publish and discover (by multiaddr and by a configured relay name), explicit import of
// one entry, a stranger refused by the relay's allowlist, a replayed older entry and someone else's
// entry refused over the wire, a relay restart keeping the entries, and a tampered state file (a
// malicious directory) whose entry clients leave out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs'
import type { ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { runCli, spawnCli, collect, freePort, killAll, type CliResult } from '../helpers/cli.ts'
import { createAgentNode, type AgentNode } from '../../src/net/node.ts'
import { publishEntry, DirectoryRefusedError } from '../../src/directory/index.ts'
import { homePaths, loadIdentity } from '../../src/agent/home.ts'
import { DurableStore } from '../../src/agent/store.ts'
import { loadRelayConfig, saveRelayConfig } from '../../src/relay/config.ts'
import type { SignedPeerEntryV2 } from '../../src/agent/peer-entry-v2.ts'

let dir: string
let relayHome: string
let relayId: string
let relayAddr: string
let statePath: string
let relay: { proc: ChildProcess; exited: Promise<CliResult> } | undefined
const ids: Record<string, string> = {}
const home = (n: string): string => join(dir, n)
const cli = (n: string, args: string[], input?: string): Promise<CliResult> => runCli(['--home', home(n), ...args], { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) })

/** `mpc-agent relay serve` as its own process; resolves once its ready file is written. */
async function startRelay(): Promise<void> {
  const ready = join(dir, 'relay.ready.json')
  rmSync(ready, { force: true })
  const proc = spawnCli(['--home', relayHome, 'relay', 'serve', '--ready-file', ready])
  relay = { proc, exited: collect(proc, 10 * 60_000) }
  const deadline = Date.now() + 30_000
  while (!existsSync(ready)) {
    if (proc.exitCode != null) throw new Error(`relay exited early: ${(await relay.exited).stderr}`)
    if (Date.now() > deadline) throw new Error('relay not ready after 30 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function stopRelay(): Promise<CliResult | undefined> {
  if (!relay) return undefined
  relay.proc.kill('SIGTERM')
  const r = await relay.exited
  relay = undefined
  return r
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mpc-agent-directory-'))
  relayHome = join(dir, 'relay')
  statePath = join(relayHome, 'directory.jsonl')
  const port = await freePort()
  const inits = [['alpha', 'provider'], ['beta', 'provider'], ['city', 'buyer'], ['mallory', 'provider']].map(async ([n, role]) => {
    const r = await cli(n as string, ['--json', 'init', '--name', n as string, '--role', role as string, '--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`])
    if (r.code !== 0) throw new Error(`init ${n}: ${r.stderr}`)
    ids[n as string] = (JSON.parse(r.stdout) as { peerId: string }).peerId
  })
  const r = await runCli(['--home', relayHome, '--json', 'relay', 'init', '--name', 'hub', '--listen', `/ip4/127.0.0.1/tcp/${port}`])
  if (r.code !== 0) throw new Error(`relay init: ${r.stderr}`)
  relayId = (JSON.parse(r.stdout) as { peerId: string }).peerId
  relayAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${relayId}`
  await Promise.all(inits)
  // the relay admits its members (not mallory): `relay allow` once through the CLI, the others written
  // to relay.yaml as an operator could (each CLI start costs seconds on a busy machine)
  const a = await runCli(['--home', relayHome, 'relay', 'allow', 'alpha', ids.alpha as string])
  if (a.code !== 0) throw new Error(`relay allow alpha: ${a.stderr}`)
  const rc = loadRelayConfig(relayHome)
  rc.allow.push({ name: 'beta', peerId: ids.beta as string }, { name: 'city', peerId: ids.city as string })
  saveRelayConfig(relayHome, rc)
  writeFileSync(join(home('alpha'), 'policy.yaml'), `approval: manual\nbuyers: [${ids.city}]\ndatasets:\n  trips: { group_by_columns: [zone] }\nmin_providers: 3\nmax_cells: 5000\n`)
  await startRelay()
}, 120_000)

afterAll(async () => {
  await stopRelay()
  await killAll()
  rmSync(dir, { recursive: true, force: true })
})

/** A node holding `name`'s own key, dialling only the relay (as the CLI does). */
async function nodeAs(name: string): Promise<AgentNode> {
  const node = await createAgentNode({ privateKey: loadIdentity(homePaths(home(name))).privateKey, listen: [], allow: new Set([relayId]) })
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

  it('one discovered entry joins the allowlist only through an explicit peers import (RELAY by its configured name)', async () => {
    expect((await cli('city', ['relays', 'add', 'hub', relayAddr])).code).toBe(0)
    const d = await cli('city', ['--json', 'peers', 'discover', 'hub', '--name', 'alpha'])
    expect(d.code, d.stderr).toBe(0)
    expect(d.stdout.trim().split('\n')).toHaveLength(1)
    const imp = await cli('city', ['peers', 'import', '-'], d.stdout)
    expect(imp.code, imp.stderr).toBe(0)
    expect(imp.stderr).toMatch(new RegExp(`added +alpha: provider ${ids.alpha}`))
    const cfg = readFileSync(join(home('city'), 'config.yaml'), 'utf8')
    expect(cfg).toContain(ids.alpha)
    expect(cfg).not.toContain(ids.beta)
    const none = await cli('city', ['peers', 'discover', 'hub', '--name', 'nobody'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/relay hub has no valid entry named "nobody"/)
  }, 60_000)

  it('a stranger (not on the relay\'s allowlist) cannot publish: the relay\'s gater refuses it before the directory', async () => {
    const p = await cli('mallory', ['peers', 'publish', relayAddr])
    expect(p.code).toBe(5)
    expect(p.stderr).toMatch(/peer relay \S+ is unreachable: .* the relay's allowlist probably does not have this agent \(its operator adds you with `mpc-agent relay allow/)
    expect(readFileSync(statePath, 'utf8')).not.toContain(ids.mallory)
  }, 60_000)

  it('over the wire: a replayed older entry and someone else\'s entry are refused', async () => {
    const node = await nodeAs('alpha')
    try {
      const label = 'relay R'
      const stale = await publishEntry(node, multiaddr(relayAddr), alphaOld, { label }).catch((e: unknown) => e)
      expect(stale).toBeInstanceOf(DirectoryRefusedError)
      expect((stale as DirectoryRefusedError).code).toBe('stale')
      // beta's entry as the relay holds it (read from its state, which the running relay only appends to)
      const betaEntry = DurableStore.open(statePath).get('dir.entry', ids.beta as string)?.val as SignedPeerEntryV2
      expect(betaEntry.peerId).toBe(ids.beta)
      const theirs = await publishEntry(node, multiaddr(relayAddr), betaEntry, { label }).catch((e: unknown) => e)
      expect((theirs as DirectoryRefusedError).code).toBe('not_yours')
    } finally {
      await node.stop()
    }
  }, 60_000)

  it('a restart keeps the entries; an entry altered in the directory\'s state is left out by clients', async () => {
    const stopped = await stopRelay()
    // the relay logged publishes by peer ID, never the entries' contents
    expect(stopped?.stderr).toMatch(new RegExp(`directory: added the entry of ${ids.alpha} \\(seq \\d+`))
    expect(stopped?.stderr).not.toMatch(/max_cells|trips/)
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
