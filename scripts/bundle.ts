// npm run bundle (also `npm ci`'s prepare and `npm pack`'s prepack): the CLI as an ES-module bundle in
// dist/cli/, which bin/mpc-agent.js runs instead of src/ when it is fresh (bin/entry.js says when).
// Why: a cron job's `query run` loads ~760 modules (libp2p and its dependencies, our sources); resolving
// and linking them one by one was ~270 ms of its ~470 ms start-up here even with the compile cache, and
// the same code bundled into a dozen chunks loads in ~50 ms (issue 20, bench/README.md "Cron row").
// Nothing is transformed but the module format: types stripped, imports inlined; no minification, so
// stack traces (MPC_AGENT_DEBUG) still name our functions. Lazy imports stay lazy (code splitting).
// Left out, loaded from node_modules as before: DuckDB (native bindings) and ink/react (the TUI, only on a
// terminal), and react-devtools-core (an optional import of ink's that is never installed).
//
// dist/cli/manifest.json lists every source file of ours the bundle was built from and package-lock.json,
// with size and mtime: a checkout whose files no longer match runs src/ (an edit is never shadowed by a
// stale bundle).
import { mkdirSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { bundleEntry } from '../bin/entry.js'

export const MANIFEST_VERSION = 1

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

export interface BundleManifest {
  v: typeof MANIFEST_VERSION
  /** the entry module the launcher imports, relative to the manifest's directory */
  entry: string
  /** our own inputs (not node_modules) and package-lock.json, relative to the package root: size and mtime when bundled */
  inputs: Array<{ path: string; size: number; mtimeMs: number }>
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
  // our sources, and the lockfile for the dependencies bundled with them (node_modules is what it pins)
  const inputs = [...Object.keys(r.metafile.inputs).filter((p) => !p.includes('node_modules/') && !p.startsWith('<')), 'package-lock.json']
    .sort()
    .map((p) => {
      const s = statSync(join(ROOT, p))
      return { path: relative(ROOT, join(ROOT, p)), size: s.size, mtimeMs: s.mtimeMs }
    })
  const manifest: BundleManifest = { v: MANIFEST_VERSION, entry: 'main.js', inputs }
  writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n')
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(join(outdir, '..'), { recursive: true })
  renameSync(tmp, outdir)
  return manifest
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --if-available (prepare): an install without devDependencies has no esbuild and simply runs src/
  // --if-stale (prepack): keep a bundle that is fresh (bin/entry.js), so that `npm pack` beside running
  // agents never swaps the directory a running CLI loads its lazy chunks from
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, 'if-available': { type: 'boolean' }, 'if-stale': { type: 'boolean' } } })
  if (values['if-stale'] && !values.outdir && bundleEntry(pathToFileURL(ROOT + '/').href, { installed: false, env: {} })) {
    process.stdout.write('dist/cli is built from the current sources: kept\n')
    process.exit(0)
  }
  if (values['if-available'] && !(await import('esbuild').then(() => true, () => false))) {
    process.stdout.write('esbuild is not installed (no devDependencies): the CLI runs from src/, not bundled\n')
    process.exit(0)
  }
  const m = await bundle(values.outdir ? resolve(values.outdir) : undefined)
  process.stdout.write(`bundled the CLI from ${m.inputs.length} source files into ${values.outdir ?? 'dist/cli'}\n`)
}
