// Issue #2 acceptance: identities, allowlist, serve/ping through the real CLI as separate processes.
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { chmodSync, statSync, writeFileSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { makeCluster, type Cluster } from '../helpers/agents.ts'
import { runCli, isAlive } from '../helpers/cli.ts'

describe('identity and config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpc-id-'))

  it('init writes a 0600 key and refuses to overwrite without --force', async () => {
    const home = join(dir, 'a')
    const r = await runCli(['--home', home, 'init', '--name', 'a'])
    expect(r.code).toBe(0)
    expect(statSync(join(home, 'identity.key')).mode & 0o777).toBe(0o600)
    const again = await runCli(['--home', home, 'init', '--name', 'a'])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/already exists.*--force/)
  })

  it('refuses a key readable by others with exit 2 and one line', async () => {
    const home = join(dir, 'b')
    expect((await runCli(['--home', home, 'init', '--name', 'b'])).code).toBe(0)
    chmodSync(join(home, 'identity.key'), 0o644)
    const r = await runCli(['--home', home, 'id'])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/accessible by others.*chmod 600/)
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/) // no stack trace
  })

  it.each([
    ['unknown key', 'name: x\nlisten: [/ip4/127.0.0.1/tcp/0]\nbogus: 1\n', /unknown key "bogus"/],
    ['bad multiaddr', 'name: x\nlisten: [not-an-addr]\n', /not a multiaddr/],
    ['missing peer id', 'name: x\npeers:\n  - { name: y, addr: /ip4/127.0.0.1/tcp/1, role: provider }\n', /no \/p2p\/<peer-id>/],
    ['bad role', 'name: x\npeers:\n  - { name: y, addr: /ip4/127.0.0.1/tcp/1/p2p/12D3KooWPkU4JFgLpQzxYyHx9j1WdNAQJMyDiqu5AVeVcYwMKfCv, role: king }\n', /role: must be/]
  ])('bad config (%s) exits 2 with a precise message', async (_n, yaml, re) => {
    const home = join(dir, `c${Math.random().toString(36).slice(2)}`)
    expect((await runCli(['--home', home, 'init', '--name', 'x'])).code).toBe(0)
    writeFileSync(join(home, 'config.yaml'), yaml)
    const r = await runCli(['--home', home, 'peers', 'list'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(re)
  })

  it('--help lists the commands and the exit codes', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    for (const c of ['init', 'id', 'peers', 'serve', 'ping']) expect(r.stdout).toContain(c)
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*7 +busy/)
  })
})

describe('three serving agents', () => {
  let c: Cluster
  beforeAll(async () => {
    c = await makeCluster([
      { name: 'p1', role: 'provider' },
      { name: 'p2', role: 'provider' },
      { name: 'p3', role: 'provider' }
    ])
    await Promise.all(['p1', 'p2', 'p3'].map((n) => c.serve(n)))
  })
  afterAll(async () => c?.teardown())

  it('ping each other through the CLI', async () => {
    const pairs: Array<[string, string]> = [['p1', 'p2'], ['p2', 'p3'], ['p3', 'p1']]
    for (const [a, b] of pairs) {
      const r = await c.cli(a, ['ping', b, '--count', '2', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout) as { rttMs: number[] }
      expect(out.rttMs).toHaveLength(2)
    }
  })

  it('a rogue agent not in the allowlist cannot open a protocol stream', async () => {
    const rogueHome = join(c.dir, 'rogue')
    expect((await runCli(['--home', rogueHome, 'init', '--name', 'rogue'])).code).toBe(0)
    // the rogue knows p1's address, but p1 does not know the rogue
    expect((await runCli(['--home', rogueHome, 'peers', 'add', 'p1', c.byName('p1').addr, '--role', 'provider'])).code).toBe(0)
    const r = await runCli(['--home', rogueHome, 'ping', 'p1', '--count', '1'])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/unreachable/)
    // p1 keeps serving its configured peers
    const ok = await c.cli('p2', ['ping', 'p1', '--count', '1'])
    expect(ok.code, ok.stderr).toBe(0)
  })

  it('serve exits 0 on SIGTERM and leaves no process behind', async () => {
    const pid = c.byName('p3').proc?.pid as number
    const r = await c.stop('p3')
    expect(r?.code).toBe(0)
    expect(isAlive(pid)).toBe(false)
  })
})
