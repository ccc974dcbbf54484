// Entry point, run by the sh launcher bin/mpc-agent with the pinned Node 24 (or directly:
// `node bin/mpc-agent.js` with Node >= 22). Checks the Node version before loading anything that
// needs it (libp2p's Noise fails every handshake on Node < 22, which would surface later as
// misleading timeouts).
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`mpc-agent: Node ${process.versions.node} is too old; Node >= 22 is required: run the installed \`mpc-agent\` (bin/mpc-agent, which uses the pinned Node 24) or \`npm run\` scripts\n`)
  process.exit(2)
}
// Node's compile cache (V8 code, and TypeScript with its types stripped, each keyed by the file's
// content): a fresh process (a cron job's `query run`) then skips compiling the ~700 modules it loads,
// ~40 % of its CPU here. Kept per user (mode 0700), not in the shared tmpdir Node defaults to: code
// loaded from it runs as this user. NODE_COMPILE_CACHE=<dir> chooses another directory,
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; a directory that cannot be made just means no cache.
/** The compile cache's directory when it is on, else null (also where installed copies keep stripped sources). */
let cacheDir = null
try {
  const { enableCompileCache, constants } = await import('node:module')
  let dir = process.env.NODE_COMPILE_CACHE
  if (!dir) {
    const { homedir } = await import('node:os')
    const { mkdirSync } = await import('node:fs')
    dir = `${process.env.XDG_CACHE_HOME || `${homedir()}/.cache`}/mpc-agent/compile-cache`
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  }
  const { status } = enableCompileCache(dir)
  if (status === constants.compileCacheStatus.ENABLED || status === constants.compileCacheStatus.ALREADY_ENABLED) cacheDir = dir
} catch {}
// The bundle (dist/cli/, scripts/bundle.ts) when it is built from exactly these sources, else src/:
// bin/entry.js says when and why.
const { fileURLToPath } = await import('node:url')
const installed = fileURLToPath(import.meta.url).split(/[\\/]/).includes('node_modules')
const { bundleEntry } = await import('./entry.js')
const bundled = bundleEntry(new URL('../', import.meta.url).href, process.env)
// An installed copy without its bundle (under node_modules: npm install -g / --prefix): Node refuses to strip types from .ts
// files; this package ships TypeScript without a build step, so strip its own sources here. The
// stripped text is kept beside the compile cache, named by a hash of the Node version and the
// source (~0.3 s of CPU per start otherwise): a changed file or another Node is simply a miss.
if (installed && !bundled) {
  const { registerHooks, stripTypeScriptTypes } = await import('node:module')
  const { readFileSync, writeFileSync, renameSync, mkdirSync } = await import('node:fs')
  const { createHash } = await import('node:crypto')
  const stripped = cacheDir && `${cacheDir}/mpc-agent-ts`
  const strip = (source) => {
    if (!stripped) return stripTypeScriptTypes(source)
    const file = `${stripped}/${createHash('sha256').update(`${process.version}\0`).update(source).digest('hex')}.js`
    try {
      return readFileSync(file, 'utf8')
    } catch {}
    const out = stripTypeScriptTypes(source)
    try {
      mkdirSync(stripped, { recursive: true, mode: 0o700 })
      const tmp = `${file}.${process.pid}.tmp`
      writeFileSync(tmp, out, { mode: 0o600 })
      renameSync(tmp, file)
    } catch {}
    return out
  }
  const root = new URL('../', import.meta.url).href
  registerHooks({
    load(url, context, next) {
      if (url.startsWith(root) && url.endsWith('.ts') && !url.includes('/node_modules/', root.length)) {
        return { format: 'module', source: strip(readFileSync(fileURLToPath(url), 'utf8')), shortCircuit: true }
      }
      return next(url, context)
    }
  })
}
const { main } = await import(bundled ?? '../src/cli/main.ts')
const code = await main(process.argv.slice(2))
// Exit now: a half-closed libp2p socket must not keep a finished cron job alive. stdout and stderr
// writes to files, pipes and terminals are synchronous on Linux, so nothing printed is lost.
process.exit(code)
