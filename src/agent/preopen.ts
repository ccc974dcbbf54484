// Masked-sum streams opened during the negotiation (masked-sum.md §5.1 "Pre-opened streams"): the
// libp2p cost of a stream (yamux SYN, multistream-select, a peer-store merge on each side: ~1–2 ms of
// CPU per stream and side here) is paid while providers decide, not between the agreement and the
// result. The stream is opened fully negotiated, so the receiving agent already sits in its router
// waiting for the first frame (START or XCHECK) when the run starts; nothing is sent on it before.
import type { AgentNode } from '../net/node.ts'
import { openChannel } from '../net/node.ts'
import { MASKED_SUM_PROTOCOL } from '../net/constants.ts'
import { FIRST_FRAME_WAIT_MS } from './limits.ts'
import type { Channel } from '../protocol/transport.ts'

/**
 * A pre-opened stream is used only this long after it opened: the receiver resets a stream whose
 * first frame has not come within FIRST_FRAME_WAIT_MS (30 s), so an older one (a negotiation that
 * waited for an operator's approval) is closed unused and the run opens a fresh stream as before.
 */
export const PREOPEN_MAX_AGE_MS = FIRST_FRAME_WAIT_MS - 10_000

export interface PreOpened {
  /** The channel if it opened and is still young enough, else null (closed, never used). Once. */
  take(): Promise<Channel | null>
  /** Close it unused (the negotiation failed or the run ended): the receiver drops it silently. */
  discard(): void
}

export function preopen(node: AgentNode, addr: string, signal?: AbortSignal): PreOpened {
  const openedAt = Date.now()
  const p = openChannel(node, addr, MASKED_SUM_PROTOCOL, { signal, optimistic: false }).catch(() => null)
  let taken = false
  const discard = (): void => {
    if (taken) return
    taken = true
    clearTimeout(expiry)
    void p.then((ch) => ch?.close())
  }
  // closed by us before the receiver's wait ends, so a long negotiation (an operator approving) leaves no refusal
  const expiry = setTimeout(discard, PREOPEN_MAX_AGE_MS)
  expiry.unref()
  return {
    async take() {
      if (taken) return null
      taken = true
      clearTimeout(expiry)
      const ch = await p
      if (ch && Date.now() - openedAt > PREOPEN_MAX_AGE_MS) {
        void ch.close()
        return null
      }
      return ch
    },
    discard
  }
}
