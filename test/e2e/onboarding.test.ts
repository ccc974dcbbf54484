// Issue #17 through the real CLI: --version and --help examples; onboarding peers with signed
// entries (`id --entry` → `peers import`), `peers list --json` accepted, every change printed, ID and
// role never changed without --force; warnings on addresses nobody else can dial; YAML errors that
// show the offending line.
import { describe, it, expect, afterAll, vi } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'

// every CLI start costs 2-4 s on this loaded 2-core machine
vi.setConfig({ testTimeout: 180_000 })

const dir = mkdtempSync(join(tmpdir(), 'mpc-agent-onboard-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const home = (n: string): string => join(dir, n)
const cli = (n: string, args: string[], input?: string) => runCli(['--home', home(n), ...args], input == null ? {} : { input })

describe('--version and --help', () => {
  it('--version prints the package version', async () => {
    const r = await runCli(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version)
  })

  it('every subcommand\'s --help shows examples and the global options', async () => {
    const cmds = [['init'], ['id'], ['peers', 'add'], ['peers', 'import'], ['peers', 'list'], ['peers', 'remove'], ['serve'], ['ping'],
      ['query', 'check'], ['query', 'run'], ['policy', 'check'], ['data', 'inspect'], ['data', 'preview'], ['audit'], ['audit', 'show'], ['audit', 'verify'], ['approve'], ['reject']]
    for (const c of cmds) {
      const r = await runCli([...c, '--help'])
      expect(r.code, c.join(' ')).toBe(0)
      expect(r.stdout, c.join(' ')).toMatch(/Examples:\n {2}\$ mpc-agent /)
      expect(r.stdout, c.join(' ')).toMatch(/Global Options:[\s\S]*--home <dir>/)
    }
  }, 120_000)
})

describe('onboarding peers with signed entries', () => {
  const entries: Record<string, string> = {}

  it('init uses the fixed default port; id --entry prints a signed entry', async () => {
    expect((await cli('alpha', ['init', '--name', 'alpha', '--role', 'provider'])).code).toBe(0)
    expect(readFileSync(join(home('alpha'), 'config.yaml'), 'utf8')).toContain('/ip4/127.0.0.1/tcp/41001')
    expect((await cli('beta', ['init', '--name', 'beta', '--role', 'provider', '--listen', '/ip4/0.0.0.0/tcp/41002', '--announce', '/dns4/beta.example/tcp/41002'])).code).toBe(0)
    expect((await cli('city', ['init', '--name', 'city', '--listen', '/ip4/127.0.0.1/tcp/41003'])).code).toBe(0)
    for (const [n, role] of [['alpha', []], ['beta', []], ['city', ['--role', 'buyer']]] as const) {
      const r = await cli(n, ['id', '--entry', ...role])
      expect(r.code, r.stderr).toBe(0)
      const e = JSON.parse(r.stdout) as { v: number; name: string; peerId: string; addrs: string[]; role: string; seq: number; exp: number; sig: string }
      expect(e.v).toBe(2)
      // seq from the durable store (at least the time in ms), valid for the default 30 days
      expect(e.seq).toBeGreaterThan(Date.now() - 600_000)
      expect(e.exp - Date.now() / 1000).toBeGreaterThan(29 * 86_400)
      expect(e.name).toBe(n)
      expect(e.sig).toMatch(/^[0-9a-f]{128}$/)
      for (const a of e.addrs) expect(a.endsWith(`/p2p/${e.peerId}`)).toBe(true)
      entries[n] = r.stdout
      writeFileSync(join(dir, `${n}.peer.json`), r.stdout)
    }
    // announce addresses, not the unspecified listen address, go to others
    expect(JSON.parse(entries.beta as string).addrs[0]).toMatch(/^\/dns4\/beta\.example\/tcp\/41002\/p2p\//)
  })

  it('an entry without a role says how to give one (exit 2)', async () => {
    const r = await cli('city', ['id', '--entry'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/pass --role provider\|buyer/)
  })

  it('peers import takes entries, prints every change, and skips this agent', async () => {
    const r = await cli('city', ['peers', 'import', join(dir, 'alpha.peer.json'), join(dir, 'beta.peer.json'), join(dir, 'city.peer.json')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/added {5}alpha: provider 12D3KooW\S+ at \/ip4\/127\.0\.0\.1\/tcp\/41001\//)
    expect(r.stderr).toMatch(/added {5}beta: provider/)
    expect(r.stderr).toMatch(/skipped {3}city: this agent/)
    const again = await cli('city', ['peers', 'import', join(dir, 'alpha.peer.json')])
    expect(again.stderr).toMatch(/unchanged alpha/)
  })

  it('peers import takes `peers list --json` output and NDJSON on stdin', async () => {
    const list = await cli('city', ['peers', 'list', '--json'])
    expect(list.code).toBe(0)
    writeFileSync(join(dir, 'list.json'), list.stdout)
    expect((await cli('gamma', ['init', '--name', 'gamma', '--listen', '/ip4/127.0.0.1/tcp/41004'])).code).toBe(0)
    const r = await cli('gamma', ['peers', 'import', join(dir, 'list.json')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/added {5}alpha/)
    expect(r.stderr).toMatch(/not signed/)
    const s = await cli('gamma', ['peers', 'import', '-'], (entries.alpha as string) + (entries.city as string))
    expect(s.code, s.stderr).toBe(0)
    expect(s.stderr).toMatch(/unchanged alpha/)
    expect(s.stderr).toMatch(/added {5}city: buyer/)
  })

  it('a tampered entry is refused (exit 2), naming the peer', async () => {
    const e = JSON.parse(entries.alpha as string) as { addrs: string[] }
    e.addrs = e.addrs.map((a) => a.replace('127.0.0.1', '10.9.9.9'))
    writeFileSync(join(dir, 'forged.json'), JSON.stringify(e))
    const r = await cli('city', ['peers', 'import', join(dir, 'forged.json')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/signature of alpha's entry does not verify/)
  })

  it('an existing peer\'s role or ID changes only with --force', async () => {
    const alphaId = (JSON.parse(entries.alpha as string) as { peerId: string }).peerId
    const betaId = (JSON.parse(entries.beta as string) as { peerId: string }).peerId
    const role = await cli('city', ['peers', 'add', 'alpha', `/ip4/127.0.0.1/tcp/41001/p2p/${alphaId}`, '--role', 'buyer'])
    expect(role.code).toBe(2)
    expect(role.stderr).toMatch(/alpha" is configured as provider; the new entry says buyer: pass --force/)
    const id = await cli('city', ['peers', 'add', 'alpha', `/ip4/127.0.0.1/tcp/41001/p2p/${betaId}`, '--role', 'provider'])
    expect(id.code).toBe(2)
    expect(id.stderr).toMatch(/already configured as "beta"/)
    const forced = await cli('city', ['peers', 'add', 'alpha', `/ip4/127.0.0.1/tcp/41001/p2p/${alphaId}`, '--role', 'buyer', '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stderr).toMatch(/updated {3}alpha: role provider → buyer/)
  })

  it('warns about /tcp/0 and refuses to sign an entry nobody can dial', async () => {
    expect((await cli('zero', ['init', '--name', 'zero', '--role', 'provider', '--listen', '/ip4/127.0.0.1/tcp/0'])).stderr).toMatch(/warning: \/ip4\/127\.0\.0\.1\/tcp\/0: port 0 means a random port/)
    const e = await cli('zero', ['id', '--entry'])
    expect(e.code).toBe(2)
    expect(e.stderr).toMatch(/warning: .*port 0/)
    expect(e.stderr).toMatch(/none of zero's addresses can be dialled by others .*set `announce:`/)
    expect(e.stdout).toBe('')
  })

  it('malformed config.yaml: the message shows the offending line', async () => {
    writeFileSync(join(home('gamma'), 'config.yaml'), 'name: gamma\nlisten: [/ip4/127.0.0.1/tcp/41004\npeers: []\n')
    const r = await cli('gamma', ['id'])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/not valid YAML: .*line \d+.*: \S/)
  })

  const query = (extra = ''): string => [
    'id: q1', 'title: t', 'dataset: trips', 'group_by:', '  - { name: zone, kind: int_range, column: PULocationID, min: 1, max: 3 }',
    'aggregates:', '  - { name: trips, kind: count }', 'participants:', '  buyer: city', '  providers: [alpha, beta, delta]', extra, ''
  ].join('\n')

  it('malformed query file: query check names the line and shows its text (exit 2)', async () => {
    writeFileSync(join(dir, 'bad-query.yaml'), query().replace('aggregates:', 'aggregates: [ { name: trips, kind: count }\nparticipants_typo: ['))
    const r = await cli('city', ['query', 'check', join(dir, 'bad-query.yaml')])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/bad-query\.yaml: not valid YAML or JSON: .*line \d+, column \d+.*: \S/)
  })

  it('malformed policy.yaml: policy check names the line and shows its text (exit 2)', async () => {
    expect((await cli('delta', ['init', '--name', 'delta', '--role', 'provider', '--listen', '/ip4/127.0.0.1/tcp/41005'])).code).toBe(0)
    const d = await cli('delta', ['id', '--entry'])
    writeFileSync(join(dir, 'delta.peer.json'), d.stdout)
    expect((await cli('alpha', ['peers', 'import', join(dir, 'city.peer.json'), join(dir, 'beta.peer.json'), join(dir, 'delta.peer.json')])).code).toBe(0)
    writeFileSync(join(dir, 'good-query.yaml'), query())
    writeFileSync(join(home('alpha'), 'policy.yaml'), 'approval: auto\nallowed_buyers: [city\nmax_runs: 3\n')
    const r = await cli('alpha', ['policy', 'check', join(dir, 'good-query.yaml'), '--buyer', 'city'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/policy\.yaml: .*not valid YAML: .*line 3, column 1: max_runs: 3$/m)
  })
})
