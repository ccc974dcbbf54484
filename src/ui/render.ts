// The only entry points into the terminal UI (issue #7). The CLI imports this module dynamically,
// and only when stdout is a TTY and neither --json nor CI is set, so nothing else loads ink.
import React from 'react'
import { render } from 'ink'
import type { RunEvent } from '../agent/events.ts'
import { RunView } from './run-view.ts'
import { initialRunState, reduceRun, type RunState } from './state.ts'
import { ApprovalView, type ApprovalProposal, type Decision } from './approval-view.ts'

const h = React.createElement

/** Redraw at most this often: progress events arrive per chunk, far faster than a terminal needs. */
const FRAME_MS = 50
/** Running phases' elapsed time ticks at this rate even when no event arrives. */
const TICK_MS = 250

export class UiError extends Error {
  override name = 'UiError'
}

export interface UiOptions {
  /** Where to draw; default stderr when it is a terminal (results go to stdout), else stdout. */
  stdout?: NodeJS.WriteStream
}

function uiStream(opts?: UiOptions): NodeJS.WriteStream {
  return opts?.stdout ?? (process.stderr.isTTY ? process.stderr : process.stdout)
}

/**
 * Show a run live. Every event from `subscribe` is folded into the view; `done()` unsubscribes,
 * draws the final frame (finished phases stay in the scrollback) and releases the terminal.
 */
export async function renderRun(
  title: string,
  peers: Array<{ id: string; name: string }>,
  subscribe: (listener: (e: RunEvent) => void) => () => void,
  opts?: UiOptions
): Promise<{ done(): Promise<void> }> {
  let state: RunState = initialRunState({ title, peers })
  const view = (): React.ReactElement => h(RunView, { state, now: Date.now() })
  const app = render(view(), { stdout: uiStream(opts), exitOnCtrlC: false, patchConsole: false })
  let timer: NodeJS.Timeout | null = null
  const draw = (): void => {
    timer = null
    app.rerender(view())
  }
  const schedule = (): void => {
    if (!timer) timer = setTimeout(draw, FRAME_MS)
  }
  const ticker = setInterval(() => {
    if (state.phases.some((p) => p.status === 'running')) schedule()
  }, TICK_MS)
  ticker.unref()
  const unsubscribe = subscribe((e) => {
    state = reduceRun(state, e)
    // the outcome is drawn at once: the process may exit right after it
    if (e.type === 'result' || e.type === 'abort' || e.type === 'error') draw()
    else schedule()
  })
  let finished: Promise<void> | null = null
  return {
    done(): Promise<void> {
      finished ??= (async () => {
        unsubscribe()
        clearInterval(ticker)
        if (timer) clearTimeout(timer)
        draw()
        app.unmount()
        await app.waitUntilExit().catch(() => {})
      })()
      return finished
    }
  }
}

/** Ask the person at the terminal; resolves with their decision (Ctrl-C and Esc reject). */
export async function promptApproval(proposal: ApprovalProposal): Promise<Decision> {
  if (!process.stdin.isTTY) {
    throw new UiError('cannot ask for approval: stdin is not a terminal; answer with `mpc-agent approve` instead')
  }
  let resolve: (d: Decision) => void = () => {}
  const decided = new Promise<Decision>((r) => {
    resolve = r
  })
  const app = render(h(ApprovalView, { proposal, onDecide: (d: Decision) => resolve(d) }), {
    stdout: uiStream(), stdin: process.stdin, exitOnCtrlC: false, patchConsole: false
  })
  try {
    return await decided
  } finally {
    await new Promise((r) => setTimeout(r, 20)) // let the "Approved."/"Rejected." frame paint
    app.unmount()
    await app.waitUntilExit().catch(() => {})
  }
}

export type { ApprovalProposal, Decision } from './approval-view.ts'
export type { RunState } from './state.ts'
