// Which code bin/mpc-agent.js runs: the bundle in dist/cli/ (scripts/bundle.ts, built by `npm ci` and
// `npm pack`) or the TypeScript sources in src/. Plain JavaScript, run before anything else is loaded.
//
// The bundle is the same code with ~760 modules linked into a dozen files: ~270 ms less start-up for a
// cron job's `query run` (issue 20). It runs only when it is known to be built from the sources beside it:
// - in a checkout, every source file listed in dist/cli/manifest.json must still have the size and
//   mtime recorded when it was bundled (a stat per file, ~1 ms); an edited, pulled or deleted file means
//   src/ runs, until `npm run bundle` (or the next `npm ci`) rebuilds it;
// - in an installed copy (a path under node_modules: npm install -g, --prefix) nothing is edited and npm
//   does not keep mtimes, so its bundle is used as shipped.
// MPC_AGENT_BUNDLE=0 always runs src/.
import { readFileSync, statSync } from 'node:fs'

/**
 * The bundle's entry module URL, or null to run src/.
 * @param {string} root the package root, a file: URL ending in '/'
 * @param {{ installed: boolean, env: Record<string, string | undefined> }} opts
 * @returns {string | null}
 */
export function bundleEntry(root, { installed, env }) {
  if (env.MPC_AGENT_BUNDLE === '0') return null
  const dir = new URL('dist/cli/', root)
  /** @type {unknown} */
  let m
  try {
    m = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8'))
  } catch {
    return null
  }
  if (typeof m !== 'object' || m === null || !('v' in m) || m.v !== 1 || !('entry' in m) || typeof m.entry !== 'string' ||
    !/^[\w.-]+\.js$/.test(m.entry) || !('inputs' in m) || !Array.isArray(m.inputs) || m.inputs.length === 0) return null
  if (!installed) {
    for (const f of m.inputs) {
      if (typeof f?.path !== 'string' || f.path.startsWith('/') || f.path.includes('..')) return null
      try {
        const s = statSync(new URL(f.path, root))
        if (s.size !== f.size || s.mtimeMs !== f.mtimeMs) return null
      } catch {
        return null
      }
    }
  }
  return new URL(m.entry, dir).href
}
