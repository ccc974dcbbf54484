// The directory's server side (protocols/directory.md §4): mount on any libp2p node. The node's own
// connection gater decides who may connect at all (a relay's allowlist); this handler decides only
// what a connected peer may store: its own entry, checked. One request per stream, one answer.
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { channelFromStream } from '../net/framing.ts'
import { safeText } from '../protocol/bounded-json.ts'
import { DirectoryRegistry, type RegistryOptions } from './registry.ts'
import { decodeRequest, encodeMessage, DirectoryProtocolError, type DirectoryResponse } from './messages.ts'
import { DIRECTORY_PROTOCOL, MAX_REQUEST_BYTES, MAX_STREAMS_PER_CONNECTION, REQUEST_TIMEOUT_MS } from './constants.ts'

export interface DirectoryOptions extends RegistryOptions {
  /** The durable state (a journal; `<statePath>.lock` beside it). */
  statePath: string
  /** One line per publish and per refused request (peer IDs and outcomes only, never entry contents). */
  log: (line: string) => void
  /** How long a stream may take to send its request (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number
}

export interface MountedDirectory {
  registry: DirectoryRegistry
  /** Unregister the protocol handler (the state stays on disk). */
  stop(): Promise<void>
}

export async function mountDirectory(node: Libp2p, opts: DirectoryOptions): Promise<MountedDirectory> {
  const registry = new DirectoryRegistry(opts.statePath, opts)
  const timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  await node.handle(DIRECTORY_PROTOCOL, (stream: Stream, connection: Connection) => {
    // every request settles here: a hostile or broken client costs one log line, never the node
    void serveOne(registry, stream, connection.remotePeer.toString(), timeoutMs, opts.log).catch((err: unknown) => {
      opts.log(`directory: internal error answering ${connection.remotePeer.toString()}: ${(err as Error)?.message ?? String(err)}`)
      stream.abort(err as Error)
    })
  }, { maxInboundStreams: MAX_STREAMS_PER_CONNECTION, maxOutboundStreams: 1 })
  opts.log(`directory: serving ${DIRECTORY_PROTOCOL} from ${opts.statePath} (${registry.size} live entries)`)
  return {
    registry,
    stop: () => node.unhandle(DIRECTORY_PROTOCOL)
  }
}

async function serveOne(registry: DirectoryRegistry, stream: Stream, remote: string, timeoutMs: number, log: (line: string) => void): Promise<void> {
  const ch = channelFromStream(stream, remote, { maxFrameBytes: MAX_REQUEST_BYTES })
  let request
  try {
    request = decodeRequest(await ch.receive({ signal: AbortSignal.timeout(timeoutMs) }))
  } catch (err) {
    const e = err as Error
    // a frame over the limit already aborted the stream; a silent or malformed client is told once
    const detail = e instanceof DirectoryProtocolError ? e.message : e.name === 'FrameTooLargeError' ? `request larger than ${MAX_REQUEST_BYTES} bytes` : e.name === 'TimeoutError' ? `no request within ${timeoutMs} ms` : 'no request'
    log(`directory: refused a request from ${remote}: ${safeText(detail, 200)}`)
    await answer(ch, { v: 1, type: 'error', code: 'bad_request', detail })
    return
  }
  let res: DirectoryResponse
  if (request.type === 'publish') {
    const r = registry.publish(request.entry, remote)
    if (r.ok) {
      res = { v: 1, type: 'published', peerId: r.entry.peerId, seq: r.entry.seq, change: r.change }
      log(`directory: ${r.change} the entry of ${remote} (seq ${r.entry.seq}, expires ${new Date(r.entry.exp * 1000).toISOString()})`)
    } else {
      res = { v: 1, type: 'error', code: r.code, detail: safeText(r.detail, 300) }
      log(`directory: refused a publish from ${remote}: ${r.code}: ${safeText(r.detail, 200)}`)
    }
  } else {
    const page = registry.list(request.after)
    res = { v: 1, type: 'entries', entries: page.entries, more: page.more }
  }
  await answer(ch, res)
}

async function answer(ch: ReturnType<typeof channelFromStream>, res: DirectoryResponse): Promise<void> {
  try {
    await ch.send(encodeMessage(res))
    await ch.close()
  } catch {
    // the client went away: nothing to tell it
  }
}
