// Issue #17: one `query run` through the live TUI under a real pseudo-terminal (util-linux `script`),
// against three serving providers: the final screen shows the result, with no npm spinner glyph and
// no stack trace, and the run exits 0.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { BIN } from '../helpers/cli.ts'
import { makeDataCluster, readResult, type DataCluster } from '../helpers/data-cluster.ts'

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
// eslint-disable-next-line no-control-regex
const plain = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '').replace(/\r/g, '')

describe('query run under a real pty', () => {
  let dc: DataCluster
  beforeAll(async () => {
    dc = await makeDataCluster(3)
    for (const p of dc.providers) await dc.cluster.serve(p)
  }, 180_000)
  afterAll(async () => dc?.cluster.teardown())

  it('the TUI ends on the result box; no spinner glyph, no stack trace; exit 0', async () => {
    const out = join(dc.dir, 'pty.json')
    const cmd = [process.execPath, BIN, '--home', dc.cluster.byName('city').home, 'query', 'run', dc.queryFile, '--out', out, '--timeout', '90'].map(sh).join(' ')
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' }
    delete env.CI
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let screen = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d))
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)))
    const text = plain(screen)
    expect(code, text).toBe(0)
    expect(existsSync(out)).toBe(true)
    const cells = readResult(out).cells.length
    expect(text).toContain(`Result: ${cells} cells`)
    expect(text).toMatch(new RegExp(`Top 5 of ${cells} cells by pickups`))
    expect(text).toMatch(/pickups \d+\s+fare \d/)
    expect(text).toContain(`Written to ${out}`)
    expect(text).toMatch(/✓ result/)
    expect(text).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/) // npm's spinner
    expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m) // a stack frame
  }, 180_000)
})
