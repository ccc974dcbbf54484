// Multi-process harness: N agent homes in a temp dir, introduced to each other, each `serve`
// a separate OS process on 127.0.0.1, readiness awaited, torn down by PID even when a test fails.
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { stringify } from 'yaml'
import { runCli, spawnCli, freePort, killAll, collect, type CliResult } from './cli.ts'

export interface AgentSpec {
  name: string
  role: 'provider' | 'buyer'
  /** Run this agent inside a network namespace, listening on `ip` (multi-host tests). */
  netns?: { ns: string; ip: string }
}

export interface TestAgent extends AgentSpec {
  home: string
  peerId: string
  addr: string
  proc?: ChildProcess
  exited?: Promise<CliResult>
}

export interface Cluster {
  dir: string
  agents: TestAgent[]
  byName(name: string): TestAgent
  /** Run the CLI as agent `name`. */
  cli(name: string, args: string[], opts?: { timeoutMs?: number; input?: string; deviant?: string }): Promise<CliResult>
  /** `lifetimeMs`: the process is killed (and `exited` rejects) after this long; 10 min by default. */
  serve(name: string, extra?: string[], opts?: { deviant?: string; lifetimeMs?: number }): Promise<TestAgent>
  stop(name: string, signal?: NodeJS.Signals): Promise<CliResult | undefined>
  teardown(): Promise<void>
}

export async function makeCluster(specs: AgentSpec[], opts: { dir?: string } = {}): Promise<Cluster> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mpc-agent-test-'))
  const agents: TestAgent[] = []
  for (const s of specs) {
    const home = join(dir, s.name)
    // a fresh namespace has every port free; on the host, ask the kernel for one
    const port = s.netns ? 4001 : await freePort()
    const host = s.netns?.ip ?? '127.0.0.1'
    const r = await runCli(['--home', home, 'init', '--name', s.name, '--listen', `/ip4/${host}/tcp/${port}`, '--json'])
    if (r.code !== 0) throw new Error(`init ${s.name} failed: ${r.stderr}`)
    const { peerId } = JSON.parse(r.stdout) as { peerId: string }
    agents.push({ ...s, home, peerId, addr: `/ip4/${host}/tcp/${port}/p2p/${peerId}` })
  }
  const directory = join(dir, 'peers.yaml')
  writeFileSync(directory, stringify(agents.map((a) => ({ name: a.name, addr: a.addr, role: a.role }))))
  await Promise.all(agents.map(async (a) => {
    const r = await runCli(['--home', a.home, 'peers', 'import', directory])
    if (r.code !== 0) throw new Error(`peers import ${a.name} failed: ${r.stderr}`)
  }))
  const byName = (n: string): TestAgent => {
    const a = agents.find((x) => x.name === n)
    if (!a) throw new Error(`no agent ${n}`)
    return a
  }
  const stop = async (n: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult | undefined> => {
    const a = byName(n)
    if (!a.proc || !a.exited) return undefined
    a.proc.kill(signal)
    const r = await a.exited
    a.proc = undefined
    return r
  }
  return {
    dir,
    agents,
    byName,
    cli: (n, args, o) => runCli(['--home', byName(n).home, ...args], { ...o, netns: byName(n).netns?.ns }),
    async serve(n, extra = [], opts = {}) {
      const a = byName(n)
      // a test that failed before stopping its agents must not fail the next test of the file too
      if (a.proc && a.proc.exitCode == null && a.proc.signalCode == null) await stop(n).catch(() => undefined)
      const ready = join(dir, `${n}.ready.json`)
      rmSync(ready, { force: true })
      a.proc = spawnCli(['--home', a.home, 'serve', '--ready-file', ready, ...extra], { netns: a.netns?.ns, deviant: opts.deviant })
      a.exited = collect(a.proc, opts.lifetimeMs ?? 10 * 60_000)
      let said = ''
      a.proc.stderr?.on('data', (d: string | Buffer) => (said += d.toString()))
      // readiness is not what these tests measure: a start-up under a full CI load (the test-only deviant entry
      // point compiles its sources) once took over 20 s; 60 s, and what serve printed, if even that passes
      const deadline = Date.now() + 60_000
      while (!existsSync(ready)) {
        if (a.proc.exitCode != null) throw new Error(`serve ${n} exited early: ${(await a.exited).stderr}`)
        if (Date.now() > deadline) throw new Error(`serve ${n} not ready after 60 s; it printed: ${said.slice(-2000) || '(nothing)'}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      JSON.parse(readFileSync(ready, 'utf8'))
      return a
    },
    stop,
    async teardown() {
      await killAll()
      if (!process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true })
    }
  }
}
