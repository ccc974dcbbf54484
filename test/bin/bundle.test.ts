// The launcher runs the bundle (dist/cli/, scripts/bundle.ts) only when it is built from exactly the
// sources beside it (bin/entry.js), and the bundle is the CLI: same commands, same output.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { execFileSync } from 'node:child_process'
import { bundleEntry } from '../../bin/entry.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const url = (dir: string): string => pathToFileURL(dir + '/').href

describe('bin/entry.js: when the bundle runs', () => {
  let root: string
  const src = (): string => join(root, 'src', 'a.ts')
  const manifest = (inputs: unknown, entry = 'main.js'): void => writeFileSync(join(root, 'dist', 'cli', 'manifest.json'), JSON.stringify({ v: 1, entry, inputs }))
  const recorded = (): Array<{ path: string; size: number; mtimeMs: number }> => {
    const s = statSync(src())
    return [{ path: 'src/a.ts', size: s.size, mtimeMs: s.mtimeMs }]
  }
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'mpc-bundle-'))
    mkdirSync(join(root, 'src'))
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true })
    writeFileSync(src(), 'export const a = 1\n')
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('a manifest that matches the sources: the bundle', () => {
    manifest(recorded())
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBe(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href)
  })
  it('MPC_AGENT_BUNDLE=0: src/', () => {
    manifest(recorded())
    expect(bundleEntry(url(root), { installed: false, env: { MPC_AGENT_BUNDLE: '0' } })).toBeNull()
  })
  it('an edited source (size or mtime changed), a deleted one, no manifest or a malformed one: src/', () => {
    manifest(recorded())
    const before = statSync(src())
    writeFileSync(src(), 'export const a = 2\n') // same size, new mtime
    utimesSync(src(), before.atime, new Date(before.mtimeMs + 1000))
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
    manifest(recorded())
    writeFileSync(src(), 'export const a = 22\n')
    utimesSync(src(), before.atime, before.mtime) // old mtime, new size
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
    manifest([{ path: 'src/gone.ts', size: 1, mtimeMs: 1 }])
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
    manifest([])
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
    manifest([{ path: '../outside.ts', size: 1, mtimeMs: 1 }])
    expect(bundleEntry(url(root), { installed: true, env: {} })).not.toBeNull() // installed: not checked
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
    manifest(recorded(), '../../evil.js')
    expect(bundleEntry(url(root), { installed: true, env: {} })).toBeNull()
    writeFileSync(join(root, 'dist', 'cli', 'manifest.json'), '{"v":1')
    expect(bundleEntry(url(root), { installed: true, env: {} })).toBeNull()
    rmSync(join(root, 'dist', 'cli', 'manifest.json'))
    expect(bundleEntry(url(root), { installed: true, env: {} })).toBeNull()
  })
  it('an installed copy (npm keeps no mtimes): its bundle as shipped', () => {
    manifest([{ path: 'src/a.ts', size: 0, mtimeMs: 0 }])
    expect(bundleEntry(url(root), { installed: true, env: {} })).not.toBeNull()
    expect(bundleEntry(url(root), { installed: false, env: {} })).toBeNull()
  })
})

describe('the bundle is the CLI', () => {
  let pkg: string
  beforeAll(() => {
    // a copy of the package with a bundle built from it (the checkout's own dist/ is left alone: agents
    // of other test files load their lazy chunks from it)
    pkg = mkdtempSync(join(tmpdir(), 'mpc-bundle-pkg-'))
    for (const d of ['bin', 'src', 'scripts']) cpSync(join(ROOT, d), join(pkg, d), { recursive: true })
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(pkg, f))
    execFileSync('ln', ['-s', join(ROOT, 'node_modules'), join(pkg, 'node_modules')])
    execFileSync(process.execPath, [join(pkg, 'scripts', 'bundle.ts')], { cwd: pkg, stdio: 'pipe' })
  }, 60_000)
  afterAll(() => rmSync(pkg, { recursive: true, force: true }))

  it('is what the launcher picks, and answers as src/ does; an edit falls back to src/', () => {
    expect(existsSync(join(pkg, 'dist', 'cli', 'main.js'))).toBe(true)
    expect(bundleEntry(url(pkg), { installed: false, env: {} })).toBe(pathToFileURL(join(pkg, 'dist', 'cli', 'main.js')).href)
    const run = (args: string[], env: NodeJS.ProcessEnv = {}): string =>
      execFileSync(process.execPath, [join(pkg, 'bin', 'mpc-agent.js'), ...args], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    const help = run(['query', '--help'])
    expect(help).toContain('run')
    expect(run(['query', '--help'], { MPC_AGENT_BUNDLE: '0' })).toBe(help)
    // a marker only the bundle carries: break the bundle's entry, and the launcher must be running src/
    const main = join(pkg, 'dist', 'cli', 'main.js')
    const text = readFileSync(main, 'utf8')
    writeFileSync(main, 'throw new Error("the bundle ran")\n' + text)
    expect(() => run(['--version'])).toThrow(/the bundle ran/)
    expect(run(['--version'], { MPC_AGENT_BUNDLE: '0' }).trim()).toBe(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version)
    const f = join(pkg, 'src', 'cli', 'output.ts')
    writeFileSync(f, readFileSync(f, 'utf8') + '\n')
    expect(run(['--version']).trim()).toBe(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version) // stale: src/
  }, 60_000)

  it('this checkout runs its bundle in CI (npm ci built it), so the e2e suite exercises the bundle', () => {
    if (!process.env.CI) return
    expect(bundleEntry(url(ROOT), { installed: false, env: {} })).not.toBeNull()
  })
})
