// Issue #17, serve as a service and the scripting contract, through the real CLI: one serve per
// home and "port in use" (exit 2), init --force refused while serving, refused connections logged
// with the peer ID, unreachable peers that say what happened, SIGHUP reloads config.yaml; and for
// `query run`: one end event as the last --json line also on SIGTERM, --timeout naming the pending
// provider, --out -, -q, no lock left behind.
import { describe, it, expect, afterAll, beforeAll, vi } from 'vitest'
import { readFileSync, writeFileSync, existsSync, readdirSync, cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeDataCluster, readResult, expected, type DataCluster } from '../helpers/data-cluster.ts'
import { runCli, spawnCli, collect, freePort } from '../helpers/cli.ts'

vi.setConfig({ testTimeout: 180_000 })

describe('serve as a service', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = await makeDataCluster(3, 50)
    for (const p of dc.providers) await dc.cluster.serve(p)
  }, 180_000)
  afterAll(async () => dc?.cluster.teardown())

  it('a second serve on the same home exits 2 naming the running one', async () => {
    const pid = dc.cluster.byName('p1').proc?.pid
    const r = await dc.cluster.cli('p1', ['serve'])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(`mpc-agent: serve (pid ${pid}) already runs on ${dc.cluster.byName('p1').home}: stop it first (\`kill ${pid}\`)`)
  })

  it('a serve whose port is taken exits 2: "port N is in use"', async () => {
    const home = join(dc.dir, 'squatter')
    const port = (/\/tcp\/(\d+)/.exec(dc.cluster.byName('p1').addr) as RegExpExecArray)[1]
    expect((await runCli(['--home', home, 'init', '--name', 'squatter', '--listen', `/ip4/127.0.0.1/tcp/${port}`])).code).toBe(0)
    const r = await runCli(['--home', home, 'serve'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`^mpc-agent: port ${port} is in use \\(another serve, or another program`))
    expect(r.stderr).not.toMatch(/internal error|faultTolerance/)
  })

  it('init --force is refused while serve runs', async () => {
    const before = readFileSync(join(dc.cluster.byName('p2').home, 'identity.key'))
    const r = await dc.cluster.cli('p2', ['init', '--name', 'p2', '--force'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/serve \(pid \d+\) is running on .*: stop it before `init --force`/)
    expect(readFileSync(join(dc.cluster.byName('p2').home, 'identity.key'))).toEqual(before)
  })

  it('an unknown peer: the dialer is told it was dropped, serve logs who and why; SIGHUP admits it without a restart', async () => {
    const home = join(dc.dir, 'newcomer')
    expect((await runCli(['--home', home, 'init', '--name', 'newcomer', '--role', 'provider', '--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`])).code).toBe(0)
    const entry = await runCli(['--home', home, 'id', '--entry'])
    writeFileSync(join(dc.dir, 'newcomer.peer.json'), entry.stdout)
    const newcomerId = (JSON.parse(entry.stdout) as { peerId: string }).peerId
    const p1 = dc.cluster.byName('p1')
    expect((await runCli(['--home', home, 'peers', 'add', 'p1', p1.addr, '--role', 'provider'])).code).toBe(0)
    const refused = await runCli(['--home', home, 'ping', 'p1', '--count', '1'])
    expect(refused.code).toBe(5)
    expect(refused.stderr).toMatch(/peer p1 is unreachable: .* accepted the connection and then closed it: its allowlist probably does not have this agent/)
    expect(refused.stderr).not.toMatch(/undefined/)
    const log = readFileSync(join(p1.home, 'logs', 'agent.log'), 'utf8')
    expect(log).toContain('connection_refused')
    expect(log).toContain(newcomerId)

    const imp = await dc.cluster.cli('p1', ['peers', 'import', join(dc.dir, 'newcomer.peer.json')])
    expect(imp.code, imp.stderr).toBe(0)
    expect(imp.stderr).toMatch(new RegExp(`serve \\(pid ${p1.proc?.pid}\\) runs on this home: \`kill -HUP ${p1.proc?.pid}\``))
    p1.proc?.kill('SIGHUP')
    let ok = await runCli(['--home', home, 'ping', 'p1', '--count', '1'])
    for (let i = 0; i < 20 && ok.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250))
      ok = await runCli(['--home', home, 'ping', 'p1', '--count', '1'])
    }
    expect(ok.code, ok.stderr).toBe(0)
    expect(readFileSync(join(p1.home, 'logs', 'agent.log'), 'utf8')).toContain('"msg":"reload","changes":["added provider newcomer"]')
    // removed again: refused again after the next SIGHUP
    expect((await dc.cluster.cli('p1', ['peers', 'remove', 'newcomer'])).code).toBe(0)
    p1.proc?.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 1000))
    expect((await runCli(['--home', home, 'ping', 'p1', '--count', '1'])).code).toBe(5)
    expect(readFileSync(join(p1.home, 'logs', 'agent.log'), 'utf8')).toContain('"msg":"reload","changes":["removed newcomer"]')
    expect(p1.proc?.exitCode).toBeNull() // SIGHUP reloads, it does not stop serve
  })

  it('a peer with nothing listening: "connection refused", exit 5', async () => {
    const home = join(dc.dir, 'lonely')
    expect((await runCli(['--home', home, 'init', '--name', 'lonely'])).code).toBe(0)
    const ghost = dc.cluster.byName('p3').addr.replace(/\/tcp\/\d+/, `/tcp/${await freePort()}`)
    expect((await runCli(['--home', home, 'peers', 'add', 'ghost', ghost, '--role', 'provider'])).code).toBe(0)
    const r = await runCli(['--home', home, 'ping', 'ghost', '--count', '1'])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/peer ghost is unreachable: connection refused at \/ip4\/127\.0\.0\.1\/tcp\/\d+/)
  })

  it('query run --out - writes the result to stdout; -q prints the result itself', async () => {
    const city = dc.cluster.byName('city')
    const r = await runCli(['--home', city.home, 'query', 'run', dc.queryFile, '--out', '-', '--format', 'csv'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n')[0]).toBe('zone,hour,pickups,fare')
    expect(existsSync('-')).toBe(false)
    // the provenance stays in the working directory (the CLI ran in this process's cwd)
    const prov = join(process.cwd(), 'zones-by-hour.provenance.json')
    expect(existsSync(prov)).toBe(true)
    rmSync(prov)
    const q = await runCli(['--home', city.home, '-q', 'query', 'run', dc.queryFile, '--out', join(dc.dir, 'q.json')])
    expect(q.code, q.stderr).toBe(0)
    expect(JSON.parse(q.stdout)).toEqual(readResult(join(dc.dir, 'q.json')))
    const total = [...expected(dc.data).values()].reduce((a, e) => a + e.pickups, 0)
    expect(r.stdout.trim().split('\n').slice(1).reduce((a, l) => a + Number(l.split(',')[2]), 0)).toBe(total)
  })

  it('data preview names every aggregate and says it shows only the top 10', async () => {
    const r = await dc.cluster.cli('p1', ['data', 'preview', dc.queryFile])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('top 10 of 120 cells by pickups (all of them: --format csv)')
    expect(lines[1]).toMatch(/^zone × hour\s+pickups\s+fare$/)
    expect(lines).toHaveLength(12)
    expect(lines[2]).toMatch(/^\d+ × \d\d\s+\d+\s+[\d.]+$/)
  })

  it('audit names peers, shows one entry in full, and exits 6 with a warning when the log was altered', async () => {
    const list = await dc.cluster.cli('p1', ['audit'])
    expect(list.code, list.stderr).toBe(0)
    // providers in the certificate's canonical (peer ID) order
    expect(list.stdout).toMatch(/certificate .* buyer city, providers p\d, p\d, p\d/)
    for (const p of ['p1', 'p2', 'p3']) expect(/certificate .* buyer city, providers (.*)/.exec(list.stdout)?.[1]).toContain(p)
    const seq = (/^\s*(\d+)\s+\S+\s+certificate/m.exec(list.stdout) as RegExpExecArray)[1] as string
    const show = await dc.cluster.cli('p1', ['audit', 'show', seq])
    expect(show.code, show.stderr).toBe(0)
    expect(show.stdout).toMatch(new RegExp(`^certificate #${seq} at `))
    expect(show.stdout).toContain(`"${dc.cluster.byName('city').peerId}" (city)`)
    expect((await dc.cluster.cli('p1', ['audit', 'show', '99999'])).code).toBe(2)
    // an altered copy of the log
    const copy = join(dc.dir, 'p1-copy')
    cpSync(dc.cluster.byName('p1').home, copy, { recursive: true, filter: (f) => !f.endsWith('.sock') })
    const log = join(copy, 'audit.jsonl')
    writeFileSync(log, readFileSync(log, 'utf8').replace('"accept":true', '"accept":false'))
    const bad = await runCli(['--home', copy, 'audit'])
    expect(bad.code).toBe(6)
    expect(bad.stdout).toMatch(/certificate/) // the listing is still shown ...
    expect(bad.stderr).toMatch(/WARNING: audit log .* does not verify/) // ... with the warning
  })

  describe('a provider waiting for its operator', () => {
    beforeAll(async () => {
      const p3 = dc.cluster.byName('p3').home
      writeFileSync(join(p3, 'policy.yaml'), readFileSync(join(p3, 'policy.yaml'), 'utf8').replace('approval: auto', 'approval: manual'))
    })

    it('the buyer says whom it waits for; --timeout names the pending provider (exit 5); the provider audits a timeout, not a rejection', async () => {
      const city = dc.cluster.byName('city')
      const r = await runCli(['--home', city.home, '--json', 'query', 'run', dc.queryFile, '--out', join(dc.dir, 't.json'), '--timeout', '8'])
      expect(r.code, r.stderr).toBe(5)
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; name?: string; abort?: { detail: string } })
      expect(lines.find((e) => e.type === 'waiting')).toMatchObject({ type: 'waiting', name: 'p3' })
      const ends = lines.filter((e) => ['result', 'abort', 'error'].includes(e.type))
      expect(ends).toHaveLength(1)
      expect(lines.at(-1)?.type).toBe('abort')
      expect(lines.at(-1)).toMatchObject({ names: { [dc.cluster.byName('p3').peerId]: 'p3', [dc.cluster.byName('city').peerId]: 'city' } })
      expect(lines.at(-1)?.abort?.detail).toMatch(/--timeout 8 s; still pending: p3 \(no decision yet\)/)
      expect(r.stderr).toMatch(/still pending: p3/)
      // p3 gives up on its operator at negotiate_s (10 s) and records why
      const audit = join(dc.cluster.byName('p3').home, 'audit.jsonl')
      const deadline = Date.now() + 30_000
      while (!readFileSync(audit, 'utf8').includes('approval_timeout') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 250))
      expect(readFileSync(audit, 'utf8')).toContain('approval_timeout')
      expect(readFileSync(audit, 'utf8')).not.toContain('operator_rejected')
    })

    it('SIGTERM: the last --json line is the one end event (exit 143), and no lock is left', async () => {
      const city = dc.cluster.byName('city')
      const out = join(dc.dir, 'term.json')
      const child = spawnCli(['--home', city.home, '--json', 'query', 'run', dc.queryFile, '--out', out])
      const done = collect(child, 120_000)
      // wait until the run is under way (the providers were dialled), then terminate it
      const deadline = Date.now() + 60_000
      while (!existsSync(`${out}.lock`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      const p3 = dc.cluster.byName('p3').home
      const auditBefore = readFileSync(join(p3, 'audit.jsonl'), 'utf8').split('\n').length
      let listed: unknown[] = []
      for (let i = 0; i < 40 && listed.length === 0; i++) {
        const l = await dc.cluster.cli('p3', ['--json', 'approve'])
        listed = l.code === 0 ? (JSON.parse(l.stdout) as unknown[]) : []
      }
      expect(listed).toHaveLength(1)
      child.kill('SIGTERM')
      const r = await done
      expect(r.code, r.stderr).toBe(143)
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; exitCode?: number; message?: string })
      expect(lines.filter((e) => ['result', 'abort', 'error'].includes(e.type))).toHaveLength(1)
      expect(lines.at(-1)).toMatchObject({ type: 'error', exitCode: 143, message: 'interrupted by SIGTERM' })
      expect(readdirSync(dc.dir).filter((f) => f.startsWith('term.json'))).toEqual([])
      // the proposal whose buyer left is gone from the provider's approval queue, audited as such
      const after = await dc.cluster.cli('p3', ['--json', 'approve'])
      expect(JSON.parse(after.stdout)).toEqual([])
      const newLines = readFileSync(join(p3, 'audit.jsonl'), 'utf8').split('\n').slice(auditBefore - 1).join('\n')
      expect(newLines).toContain('did not decide before the buyer gave up')
    })
  })
})
