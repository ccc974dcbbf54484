// Directory messages (protocols/directory.md §3.2): one JSON object per frame, parsed only through
// the bounded parser. Pure: no libp2p, no fs. An entry inside a message is NOT checked here (the
// registry and the client run verifyPeerEntryV2 on it with their own clocks).
import { utf8 } from '../crypto/bytes.ts'
import { isJsonObject, onlyKeys, parseV1Object, safeText } from '../protocol/bounded-json.ts'
import { DIRECTORY_JSON_LIMITS } from './constants.ts'

export type DirectoryRequest =
  | { v: 1; type: 'publish'; entry: unknown }
  | { v: 1; type: 'list'; after?: string }

export type PublishChange = 'added' | 'replaced' | 'unchanged'
export type DirectoryErrorCode = 'bad_request' | 'bad_entry' | 'not_yours' | 'stale' | 'full' | 'rate'

export type DirectoryResponse =
  | { v: 1; type: 'published'; peerId: string; seq: number; change: PublishChange }
  | { v: 1; type: 'entries'; entries: unknown[]; more: boolean }
  | { v: 1; type: 'error'; code: DirectoryErrorCode; detail: string }

const CODES: DirectoryErrorCode[] = ['bad_request', 'bad_entry', 'not_yours', 'stale', 'full', 'rate']
const CHANGES: PublishChange[] = ['added', 'replaced', 'unchanged']

/** A message that is not valid for this protocol version; `detail` is safe to print. */
export class DirectoryProtocolError extends Error {
  override name = 'DirectoryProtocolError'
}

export function encodeMessage(m: DirectoryRequest | DirectoryResponse): Uint8Array {
  return utf8(JSON.stringify(m))
}

const fail = (reason: string): DirectoryProtocolError => new DirectoryProtocolError(reason)
const parse = (bytes: Uint8Array): Record<string, unknown> => parseV1Object(bytes, DIRECTORY_JSON_LIMITS, fail)
const only = (m: Record<string, unknown>, keys: string[]): void => onlyKeys(m, keys, fail)

export function decodeRequest(bytes: Uint8Array): DirectoryRequest {
  const m = parse(bytes)
  if (m.type === 'publish') {
    only(m, ['v', 'type', 'entry'])
    if (!isJsonObject(m.entry)) throw new DirectoryProtocolError('publish: expected an entry object')
    return { v: 1, type: 'publish', entry: m.entry }
  }
  if (m.type === 'list') {
    only(m, ['v', 'type', 'after'])
    if (m.after !== undefined && typeof m.after !== 'string') throw new DirectoryProtocolError('list: after must be a peer ID string')
    return m.after === undefined ? { v: 1, type: 'list' } : { v: 1, type: 'list', after: m.after }
  }
  throw new DirectoryProtocolError(`unknown request type ${safeText(JSON.stringify(m.type) ?? 'none', 40)}`)
}

export function decodeResponse(bytes: Uint8Array): DirectoryResponse {
  const m = parse(bytes)
  if (m.type === 'published') {
    only(m, ['v', 'type', 'peerId', 'seq', 'change'])
    if (typeof m.peerId !== 'string' || !Number.isSafeInteger(m.seq) || !CHANGES.includes(m.change as PublishChange)) throw new DirectoryProtocolError('published: bad fields')
    return { v: 1, type: 'published', peerId: m.peerId, seq: m.seq as number, change: m.change as PublishChange }
  }
  if (m.type === 'entries') {
    only(m, ['v', 'type', 'entries', 'more'])
    if (!Array.isArray(m.entries) || typeof m.more !== 'boolean') throw new DirectoryProtocolError('entries: bad fields')
    return { v: 1, type: 'entries', entries: m.entries, more: m.more }
  }
  if (m.type === 'error') {
    only(m, ['v', 'type', 'code', 'detail'])
    if (!CODES.includes(m.code as DirectoryErrorCode) || typeof m.detail !== 'string') throw new DirectoryProtocolError('error: bad fields')
    return { v: 1, type: 'error', code: m.code as DirectoryErrorCode, detail: safeText(m.detail, 300) }
  }
  throw new DirectoryProtocolError(`unknown response type ${safeText(JSON.stringify(m.type) ?? 'none', 40)}`)
}
