// The UI entry points: renderRun folds subscribed events until done(); promptApproval refuses a
// non-terminal stdin; and nothing outside src/ui imports ink (the non-interactive path never loads it).
import { describe, expect, it } from 'vitest'
import { PassThrough } from 'node:stream'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promptApproval, renderRun } from '../../src/ui/render.ts'
import type { RunEvent } from '../../src/agent/events.ts'

function fakeTerminal(): { stream: NodeJS.WriteStream; text(): string } {
  const pt = new PassThrough()
  let out = ''
  pt.on('data', (c: Buffer) => {
    out += c.toString('utf8')
  })
  const stream = Object.assign(pt, { columns: 100, rows: 40, isTTY: false }) as unknown as NodeJS.WriteStream
  return { stream, text: () => out }
}

describe('renderRun', () => {
  it('draws the events it is given and unsubscribes on done()', async () => {
    const term = fakeTerminal()
    let listener: ((e: RunEvent) => void) | null = null
    let unsubscribed = false
    const ui = await renderRun('Trips', [{ id: 'p1', name: 'alice' }], (l) => {
      listener = l
      return () => {
        unsubscribed = true
      }
    }, { stdout: term.stream })
    expect(listener).not.toBeNull()
    const emit = listener as unknown as (e: RunEvent) => void
    emit({ v: 1, type: 'phase', phase: 'negotiate', state: 'start', at: Date.now() })
    emit({ v: 1, type: 'phase', phase: 'negotiate', state: 'done', at: Date.now() })
    emit({ v: 1, type: 'result', session: 's', cells: 4, out: '/tmp/x.json', top: [{ label: 'north', value: 42 }] })
    await ui.done()
    await ui.done() // idempotent
    expect(unsubscribed).toBe(true)
    const out = term.text()
    expect(out).toContain('Trips')
    expect(out).toContain('Result: 4 cells')
    expect(out).toMatch(/north\s+42/)
  })
})

describe('promptApproval', () => {
  it('refuses to prompt without a terminal on stdin', async () => {
    if (process.stdin.isTTY) return // only meaningful under CI / vitest without a terminal
    await expect(promptApproval({
      proposalId: 'ab', buyer: 'b', dataset: 'd', title: 't', columns: [], cells: 1, providers: [],
      policy: { accept: true, reasons: [] }, lines: []
    })).rejects.toThrow(expect.objectContaining({ name: 'UiError' }))
  })
})

describe('ink stays inside src/ui', () => {
  it('no module outside src/ui imports ink or react', () => {
    const root = resolve(import.meta.dirname, '../../src')
    const offenders: string[] = []
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name)
        if (statSync(p).isDirectory()) {
          if (p !== join(root, 'ui')) walk(p)
        } else if (p.endsWith('.ts') && /from ['"](ink|react)['"]/.test(readFileSync(p, 'utf8'))) {
          offenders.push(p)
        }
      }
    }
    walk(root)
    expect(offenders).toEqual([])
  })
})
