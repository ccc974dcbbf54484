// The directory's client side (protocols/directory.md §5): publish this agent's own entry, list
// the entries a directory holds. The directory is not trusted: every entry it serves is checked
// here again (signature, bounds, expiry); one that fails is reported and left out, never used.
import type { Multiaddr } from '@multiformats/multiaddr'
import { openChannel, type AgentNode } from '../net/node.ts'
import { ConfigError } from '../agent/errors.ts'
import { PeerUnreachableError } from '../net/errors.ts'
import { EntryCheckError, verifyPeerEntryV2, type SignedPeerEntryV2 } from '../agent/peer-entry-v2.ts'
import { decodeResponse, encodeMessage, DirectoryProtocolError, type DirectoryErrorCode, type DirectoryRequest, type DirectoryResponse, type PublishChange } from './messages.ts'
import { DIRECTORY_PROTOCOL, MAX_PAGES, RESPONSE_TIMEOUT_MS } from './constants.ts'

/** The directory refused a request (exit 2: the message says why and what to do). */
export class DirectoryRefusedError extends ConfigError {
  override name = 'DirectoryRefusedError'
  readonly code: DirectoryErrorCode
  constructor(code: DirectoryErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

export interface ClientOptions {
  signal?: AbortSignal
  timeoutMs?: number
  /** Names the directory in messages ("relay R"). */
  label: string
}

async function request(node: AgentNode, dir: Multiaddr, req: DirectoryRequest, o: ClientOptions): Promise<DirectoryResponse> {
  const timeoutMs = o.timeoutMs ?? RESPONSE_TIMEOUT_MS
  const ch = await openChannel(node, dir, DIRECTORY_PROTOCOL, { timeoutMs, ...(o.signal ? { signal: o.signal } : {}) })
  try {
    await ch.send(encodeMessage(req))
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs)
    let bytes: Uint8Array
    try {
      bytes = await ch.receive({ signal })
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason
      const e = err as Error
      throw new PeerUnreachableError(o.label, e.name === 'TimeoutError' ? `no directory answer within ${timeoutMs} ms` : `it closed the directory stream without an answer (${e.message || e.name}); is it a relay that serves ${DIRECTORY_PROTOCOL}?`)
    }
    try {
      return decodeResponse(bytes)
    } catch (err) {
      throw new DirectoryProtocolError(`${o.label} sent a malformed directory answer: ${(err as Error).message}`)
    }
  } finally {
    await ch.close()
  }
}

/** Publish `entry` (this agent's own, freshly signed); resolves with what the directory did. */
export async function publishEntry(node: AgentNode, dir: Multiaddr, entry: SignedPeerEntryV2, o: ClientOptions): Promise<{ change: PublishChange; seq: number }> {
  const res = await request(node, dir, { v: 1, type: 'publish', entry }, o)
  if (res.type === 'error') throw new DirectoryRefusedError(res.code, `${o.label} refused the entry (${res.code}): ${res.detail}`)
  if (res.type !== 'published' || res.peerId !== entry.peerId || res.seq !== entry.seq) throw new DirectoryProtocolError(`${o.label} answered a publish with something else (${res.type})`)
  return { change: res.change, seq: res.seq }
}

export interface Discovered {
  /** Entries that passed every check here, in peer-ID order, at most one per peer ID (the highest seq). */
  entries: SignedPeerEntryV2[]
  /** Entries the directory served that failed a check here (attributable to it for us, not transferable). */
  rejected: { peerId: string; reason: string }[]
}

/** Every entry the directory serves, page by page, each verified against this machine's clock. */
export async function discoverEntries(node: AgentNode, dir: Multiaddr, o: ClientOptions & { now?: () => number }): Promise<Discovered> {
  const byPeer = new Map<string, SignedPeerEntryV2>()
  const rejected: Discovered['rejected'] = []
  let after: string | undefined
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await request(node, dir, after === undefined ? { v: 1, type: 'list' } : { v: 1, type: 'list', after }, o)
    if (res.type === 'error') throw new DirectoryRefusedError(res.code, `${o.label} refused to list its entries (${res.code}): ${res.detail}`)
    if (res.type !== 'entries') throw new DirectoryProtocolError(`${o.label} answered a list with something else (${res.type})`)
    let last = after
    for (const [i, raw] of res.entries.entries()) {
      const pid = (raw as { peerId?: unknown } | null)?.peerId
      const claimed = typeof pid === 'string' ? pid.slice(0, 60) : `item ${i}`
      // the cursor follows what was served, valid or not (the bounded parser capped its length)
      if (typeof pid === 'string' && (last === undefined || pid > last)) last = pid
      try {
        const e = verifyPeerEntryV2(raw, `entry of ${claimed}`, (o.now ?? Date.now)())
        const had = byPeer.get(e.peerId)
        if (!had || had.seq < e.seq) byPeer.set(e.peerId, e)
      } catch (err) {
        if (!(err instanceof EntryCheckError)) throw err
        rejected.push({ peerId: claimed, reason: err.message })
      }
    }
    if (!res.more) break
    // the cursor must move forward, or a directory could keep a client paging forever
    if (last === after) throw new DirectoryProtocolError(`${o.label} said more entries follow but served none newer than the last page`)
    after = last
  }
  return { entries: [...byPeer.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : 1)), rejected }
}


