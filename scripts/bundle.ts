// npm run bundle (also `npm ci`'s prepare and `npm pack`'s prepack): the CLI as an ES-module bundle in
// dist/cli/, which bin/mpc-agent.js runs instead of src/ when it is fresh (bin/entry.js says when).
// Why: a cron job's `query run` loads ~760 modules (libp2p and its dependencies, our sources); resolving
// and linking them one by one was ~270 ms of its ~470 ms start-up here even with the compile cache, and
// the same code bundled into a few dozen files loads in ~50 ms (issue 20, bench/README.md "Issue 20 on an idle machine").
// Nothing is transformed but the module format: types stripped, imports inlined; no minification, so
// stack traces (--verbose) still name our functions. Lazy imports stay lazy (code splitting).
// Left out, loaded from node_modules as before: DuckDB (native bindings) and ink/react (the TUI, only on a
// terminal), and react-devtools-core (an optional import of ink's that is never installed).
//
// dist/cli/manifest.json lists every source file of ours the bundle was built from (size, mtime, SHA-256):
// a copy whose sources no longer match runs src/ (bin/entry.js: an edit is never shadowed by a stale
// bundle), and the lockfile's hash: `npm ci`/`npm install` (prepare) rebuild when the dependencies changed.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { bundleEntry } from '../bin/entry.js'

export const MANIFEST_VERSION = 2

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

export interface BundleManifest {
  v: typeof MANIFEST_VERSION
  /** the entry module the launcher imports, relative to the manifest's directory */
  entry: string
  /** our own sources (not node_modules), relative to the package root, when bundled (checked by bin/entry.js) */
  inputs: Array<{ path: string; size: number; mtimeMs: number; sha256: string }>
  /** SHA-256 of package-lock.json when bundled: the dependencies linked in (checked here, by --if-stale) */
  lock: string | null
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')
const lockHash = (root: string): string | null => existsSync(join(root, 'package-lock.json')) ? sha256(join(root, 'package-lock.json')) : null

/** Whether dist/cli holds a bundle of the current sources and the current lockfile. */
export function isFresh(root = ROOT): boolean {
  if (!bundleEntry(pathToFileURL(root + '/').href, {})) return false
  try {
    const m = JSON.parse(readFileSync(join(root, 'dist', 'cli', 'manifest.json'), 'utf8')) as BundleManifest
    return m.lock === lockHash(root)
  } catch {
    return false
  }
}

export async function bundle(outdir = join(ROOT, 'dist', 'cli')): Promise<BundleManifest> {
  // built beside, then swapped in: a launcher starting meanwhile sees the old bundle or none, never half
  const tmp = `${outdir}.${process.pid}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  const { build } = await import('esbuild')
  const r = await build({
    absWorkingDir: ROOT,
    entryPoints: { main: 'src/cli/main.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    outdir: tmp,
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
    external: ['@duckdb/*', 'ink', 'react', 'react/*', 'react-devtools-core'],
    // CommonJS dependencies bundled into ESM call require() for Node built-ins
    banner: { js: "import { createRequire as __mpcCreateRequire } from 'node:module'; const require = __mpcCreateRequire(import.meta.url);" }
  })
  const inputs = Object.keys(r.metafile.inputs)
    .filter((p) => !p.includes('node_modules/') && !p.startsWith('<'))
    .map((p) => relative(ROOT, join(ROOT, p)))
    .sort()
    .map((p) => {
      if (!p.startsWith('src/')) throw new Error(`the bundle would include ${p}, outside src/`)
      const s = statSync(join(ROOT, p))
      return { path: p, size: s.size, mtimeMs: s.mtimeMs, sha256: sha256(join(ROOT, p)) }
    })
  const manifest: BundleManifest = { v: MANIFEST_VERSION, entry: 'main.js', inputs, lock: lockHash(ROOT) }
  writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n')
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(join(outdir, '..'), { recursive: true })
  renameSync(tmp, outdir)
  return manifest
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --if-stale (prepare, prepack): keep a bundle of the current sources and lockfile, so that `npm pack`
  // beside running agents never swaps the directory a running CLI loads its lazy chunks from
  // --if-available (prepare): an install without devDependencies (the README's install: an unpacked
  // tarball, npm install --omit=dev) has no esbuild; the bundle it shipped with runs if its sources match
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, 'if-available': { type: 'boolean' }, 'if-stale': { type: 'boolean' } } })
  if (values['if-stale'] && !values.outdir && isFresh()) {
    process.stdout.write('dist/cli is built from the current sources: kept\n')
    process.exit(0)
  }
  if (values['if-available'] && !(await import('esbuild').then(() => true, () => false))) {
    const shipped = bundleEntry(pathToFileURL(ROOT + '/').href, {}) !== null
    process.stdout.write(`esbuild is not installed (no devDependencies): ${shipped ? 'the CLI runs from the dist/cli it came with, which matches its sources' : 'the CLI runs from src/'}\n`)
    process.exit(0)
  }
  const m = await bundle(values.outdir ? resolve(values.outdir) : undefined)
  process.stdout.write(`bundled the CLI from ${m.inputs.length} source files into ${values.outdir ?? 'dist/cli'}\n`)
}
