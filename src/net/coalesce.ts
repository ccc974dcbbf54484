// One socket write per event-loop turn, not one per buffer. @libp2p/tcp 11 writes every buffer it is
// handed with its own socket.write(): each Noise message is 2–3 buffers (length prefix, ciphertext,
// tag), so each protocol message cost 2–3 write system calls, and on loopback a write also runs the
// receiver's TCP processing. Measured here (bench --cpu-prof, N = 5, L = 1k): the buyer spent 22 % of its
// run's CPU inside socket writes, a provider 6 %. Corking the socket for the rest of the current turn
// (the pattern Node's stream docs give for cork) makes the buffers of that turn one writev.
//
// The bytes on the wire and their order are unchanged; only their grouping into system calls changes.
// Nothing waits: the socket is uncorked on process.nextTick, before the loop turns. Backpressure is as
// before (write() still reports the buffered length against the high-water mark; 'drain' still fires).
// Applied per connection, from the connection gater (the first hook that sees the raw connection, before
// the Noise handshake); anything that is not a TCP socket connection (a relayed one) is left alone.
import { Socket } from 'node:net'

interface SocketConnection {
  socket?: unknown
  sendData?: (data: unknown) => unknown
}

const coalesced = new WeakSet<object>()

export function coalesceWrites(maConn: unknown): void {
  if (typeof maConn !== 'object' || maConn === null || coalesced.has(maConn)) return
  const c = maConn as SocketConnection
  const socket = c.socket
  const sendData = c.sendData
  if (!(socket instanceof Socket) || typeof sendData !== 'function') return
  coalesced.add(maConn)
  const uncork = (): void => socket.uncork()
  c.sendData = function (this: unknown, data: unknown): unknown {
    if (socket.writableCorked === 0) {
      socket.cork()
      process.nextTick(uncork)
    }
    return sendData.call(this, data)
  }
}

/** Whether coalesceWrites wrapped this connection (tests). */
export function isCoalesced(maConn: unknown): boolean {
  return typeof maConn === 'object' && maConn !== null && coalesced.has(maConn)
}
