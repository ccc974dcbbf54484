// Run the real CLI as a separate OS process (process.execPath is Node 24 under `npm test`).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { listenPort } from '../../examples/ride-sharing/ports.ts'

export const BIN = fileURLToPath(new URL('../../bin/mpc-agent.js', import.meta.url))
/** The test-only entry point that runs the real CLI with one named deviation (deviant.ts). */
export const DEVIANT = fileURLToPath(new URL('./deviant.ts', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

const live = new Set<ChildProcess>()

/** Spawn `mpc-agent ...args`; tracked so killAll() can tear it down even when a test fails. */
export function spawnCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; netns?: string; deviant?: string } = {}): ChildProcess {
  const argv = opts.deviant ? [process.execPath, DEVIANT, opts.deviant, ...args] : [process.execPath, BIN, ...args]
  if (opts.netns) argv.unshift('ip', 'netns', 'exec', opts.netns)
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  live.add(child)
  child.on('exit', () => live.delete(child))
  if (opts.input != null) child.stdin?.end(opts.input)
  else child.stdin?.end()
  return child
}

export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`CLI timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    // 'close' fires after the process exited AND its stdio drained: no lost last lines
    child.on('close', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; netns?: string; deviant?: string } = {}): Promise<CliResult> {
  return collect(spawnCli(args, opts), opts.timeoutMs)
}

export async function killAll(): Promise<void> {
  const waits = [...live].map((c) => new Promise<void>((r) => {
    if (c.exitCode != null || c.signalCode != null) return r()
    c.once('exit', () => r())
    c.kill('SIGKILL')
  }))
  await Promise.all(waits)
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A free TCP port on 127.0.0.1, outside the kernel's ephemeral range (examples/ride-sharing/ports.ts says why). */
export const freePort = listenPort
