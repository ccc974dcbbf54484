// Yamux window updates as the reference implementations send them. @chainsafe/libp2p-yamux 8.0.1
// answers EVERY data frame it receives with a WINDOW_UPDATE frame (stream.js handleData →
// sendWindowUpdate): for a protocol of small messages that doubles the frames, the Noise messages
// and the socket writes of each side. hashicorp/yamux (session.go sendWindowUpdate) and go-yamux
// send an update only once at least half of the receive window has been consumed, or when flags
// (SYN, ACK) must go out. Measured here (bench --cpu-prof, N = 5, L = 1k): the per-frame updates were
// about half of the buyer's socket-write time, and socket writes its largest CPU item.
//
// The flow-control argument is unchanged: a sender is blocked only when its window is exhausted,
// i.e. when the receiver's capacity is 0 < half the window, and then the next frame received (or
// the resume after a pause, stream.js sendResume) sends the update. Nothing else relies on the
// updates' timing; a paused stream (our backpressure, src/net/framing.ts) still sends none.
import { YamuxStream, StreamState } from '@chainsafe/libp2p-yamux/stream'

interface WindowState { state: StreamState; recvWindow: number; recvWindowCapacity: number }

let installed = false

/** Install once per process (createAgentNode calls it); idempotent. */
export function installHalfWindowUpdates(): void {
  if (installed) return
  installed = true
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate(this: WindowState): void }
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState): void {
    // flags are due only in Init (SYN) and SYNReceived (ACK); Paused sends nothing anyway
    if (this.state === StreamState.Established && this.recvWindowCapacity > this.recvWindow / 2) return
    original.call(this)
  }
}
