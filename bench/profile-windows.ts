// Read a party's V8 CPU profile for its timed windows only (bench/README.md "Profiling the window").
//   npm run bench -- --n 5 --l 1000 --reps 40 --no-scale --no-data --no-ride-sharing --no-privacy \
//     --no-cron --no-netem --no-relay --cpu-prof /tmp/prof
//   node bench/profile-windows.ts /tmp/prof/party-0.cpuprofile [--kind secure|plain] [--skip 3] [--top 25]
// party-0 is the buyer. bench/agent.ts writes <profile>.windows.json: [start µs, end µs, kind] per window,
// on the monotonic clock the profile's timestamps use. Samples are wall-clock slices: on a loaded
// machine a slice also holds the time the process waited for a core, so shares are indicative.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { kind: { type: 'string', default: 'secure' }, skip: { type: 'string', default: '3' }, top: { type: 'string', default: '25' } }
})
const file = positionals[0]
if (!file) {
  process.stderr.write('usage: node bench/profile-windows.ts DIR/party-K.cpuprofile [--kind secure|plain] [--skip N] [--top N]\n')
  process.exit(2)
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
const windows = (JSON.parse(readFileSync(file.replace(/\.cpuprofile$/, '.windows.json'), 'utf8')) as Array<[number, number, string]>)
  .filter((w) => w[2] === o.kind).slice(Number(o.skip)) // the first runs warm the JIT up

/** Where a frame's code lives: a package, a file of ours, a node: module, or the V8 pseudo-frame. */
function whereOf(url: string, fn: string): string {
  if (!url) return `(${fn})`
  if (url.includes('node_modules/')) {
    const parts = url.split('node_modules/').pop()?.split('/') ?? []
    return (parts[0] ?? '').startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url)
  }
  if (url.includes('/src/')) return `src/${url.split('/src/')[1]}`
  if (url.includes('/bench/')) return `bench/${url.split('/bench/')[1]}`
  return url
}

const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const fns = new Map<string, number>()
const add = (m: Map<string, number>, k: string, d: number): void => {
  m.set(k, (m.get(k) ?? 0) + d)
}
let t = p.startTime
let w = 0
let busy = 0
let idle = 0
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0
  while (w < windows.length && t > (windows[w]?.[1] ?? 0)) w++
  if (w >= windows.length) break
  if (t < (windows[w]?.[0] ?? 0)) continue
  const d = p.timeDeltas[i] ?? 0
  const node = byId.get(p.samples[i] ?? -1)
  if (!node) continue
  const cf = node.callFrame
  if (cf.functionName === '(idle)') {
    idle += d
    continue
  }
  busy += d
  add(self, whereOf(cf.url, cf.functionName), d)
  add(fns, `${cf.functionName || '(anonymous)'} ${whereOf(cf.url, cf.functionName)}:${cf.lineNumber}`, d)
  const seen = new Set<string>()
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id)?.callFrame
    if (!f) break
    const k = whereOf(f.url, f.functionName)
    if (!seen.has(k)) add(inclusive, k, d)
    seen.add(k)
  }
}
const n = Math.max(1, windows.length)
const wall = windows.reduce((a, x) => a + x[1] - x[0], 0)
process.stdout.write(`${windows.length} ${o.kind} windows: ${(wall / 1000 / n).toFixed(1)} ms each, busy ${(busy / 1000 / n).toFixed(1)} ms, idle ${(idle / 1000 / n).toFixed(1)} ms\n`)
const top = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`--- ${title}\n`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(o.top))) process.stdout.write(`${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)} %  ${k}\n`)
}
top('self time, by package or file', self)
top('inclusive time, by package or file', inclusive)
top('self time, by function', fns)
