// The launcher runs the bundle (dist/cli/, scripts/bundle.ts) only when it is built from exactly the
// sources beside it (bin/entry.js), and the bundle is the CLI: same commands, same output.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { bundleEntry } from '../../bin/entry.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const url = (dir: string): string => pathToFileURL(dir + '/').href

describe('bin/entry.js: when the bundle runs', () => {
  let root: string
  const src = (): string => join(root, 'src', 'a.ts')
  const manifest = (inputs: unknown, entry = 'main.js', v = 2): void => writeFileSync(join(root, 'dist', 'cli', 'manifest.json'), JSON.stringify({ v, entry, inputs, lock: null }))
  const recorded = (): Array<{ path: string; size: number; mtimeMs: number; sha256: string }> => {
    const s = statSync(src())
    return [{ path: 'src/a.ts', size: s.size, mtimeMs: s.mtimeMs, sha256: createHash('sha256').update(readFileSync(src())).digest('hex') }]
  }
  const pick = (env: Record<string, string> = {}): string | null => bundleEntry(url(root), env)
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'mpc-bundle-'))
    mkdirSync(join(root, 'src'))
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true })
    writeFileSync(src(), 'export const a = 1\n')
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('a manifest that matches the sources: the bundle; MPC_AGENT_BUNDLE=0: src/', () => {
    manifest(recorded())
    expect(pick()).toBe(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href)
    expect(pick({ MPC_AGENT_BUNDLE: '0' })).toBeNull()
  })
  it('other mtimes but the same contents (an unpacked tarball): the bundle', () => {
    manifest(recorded())
    const s = statSync(src())
    utimesSync(src(), s.atime, new Date(499162500000)) // npm pack's fixed 1985 date
    expect(pick()).not.toBeNull()
  })
  it('an edited source (same size, or same mtime), a deleted one, a path outside src/, no or a malformed manifest: src/', () => {
    writeFileSync(src(), 'export const a = 1\n')
    manifest(recorded())
    const before = statSync(src())
    writeFileSync(src(), 'export const a = 2\n') // same size, new contents
    expect(pick()).toBeNull()
    manifest(recorded())
    writeFileSync(src(), 'export const a = 22\n') // new size
    utimesSync(src(), before.atime, before.mtime)
    expect(pick()).toBeNull()
    manifest([{ path: 'src/gone.ts', size: 1, mtimeMs: 1, sha256: '00' }])
    expect(pick()).toBeNull()
    manifest([])
    expect(pick()).toBeNull()
    for (const path of ['../outside.ts', 'src/../../x.ts', '/etc/passwd', 'package.json']) {
      manifest([{ path, size: 1, mtimeMs: 1, sha256: '00' }])
      expect(pick(), path).toBeNull()
    }
    manifest(recorded(), '../../evil.js')
    expect(pick()).toBeNull()
    manifest(recorded(), 'main.js', 1) // an older manifest format
    expect(pick()).toBeNull()
    writeFileSync(join(root, 'dist', 'cli', 'manifest.json'), '{"v":2')
    expect(pick()).toBeNull()
    rmSync(join(root, 'dist', 'cli', 'manifest.json'))
    expect(pick()).toBeNull()
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
    expect(bundleEntry(url(pkg), {})).toBe(pathToFileURL(join(pkg, 'dist', 'cli', 'main.js')).href)
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
    expect(bundleEntry(url(ROOT), {})).not.toBeNull()
  })
})
