// Which code bin/mpc-agent.js runs: the bundle in dist/cli/ (scripts/bundle.ts, built by `npm ci` and
// `npm pack`) or the TypeScript sources in src/. Plain JavaScript, run before anything else is loaded.
//
// The bundle is the same code with ~760 modules linked into a few dozen files: ~250 ms less start-up for
// a cron job's `query run` (issue 20). It runs only while it is known to be built from the sources beside
// it: every source file listed in dist/cli/manifest.json must still have the size and SHA-256 recorded
// when it was bundled (the recorded mtime, when it still matches, stands in for reading the file; an
// unpacked tarball has other mtimes and is hashed, ~3 ms). An edited, pulled or deleted file means src/
// runs, until `npm run bundle` (or the next `npm ci`) rebuilds it. Not a security boundary: whoever can
// write dist/ can write src/. MPC_AGENT_BUNDLE=0 always runs src/.
import { readFileSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'

/**
 * The bundle's entry module URL, or null to run src/.
 * @param {string} root the package root, a file: URL ending in '/'
 * @param {Record<string, string | undefined>} env
 * @returns {string | null}
 */
export function bundleEntry(root, env) {
  if (env.MPC_AGENT_BUNDLE === '0') return null
  const dir = new URL('dist/cli/', root)
  /** @type {unknown} */
  let m
  try {
    m = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8'))
  } catch {
    return null
  }
  if (typeof m !== 'object' || m === null || !('v' in m) || m.v !== 2 || !('entry' in m) || typeof m.entry !== 'string' ||
    !/^[\w.-]+\.js$/.test(m.entry) || !('inputs' in m) || !Array.isArray(m.inputs) || m.inputs.length === 0) return null
  for (const f of m.inputs) {
    if (typeof f?.path !== 'string' || !/^src\/[\w./-]+$/.test(f.path) || f.path.includes('..')) return null
    try {
      const file = new URL(f.path, root)
      const s = statSync(file)
      if (s.size !== f.size) return null
      if (s.mtimeMs !== f.mtimeMs && createHash('sha256').update(readFileSync(file)).digest('hex') !== f.sha256) return null
    } catch {
      return null
    }
  }
  return new URL(m.entry, dir).href
}
