// Network errors, kept free of libp2p imports so the CLI can map them without loading libp2p.

export class PeerUnreachableError extends Error {
  override name = 'PeerUnreachableError'
  readonly peer: string
  constructor(peer: string, detail: string) {
    super(`peer ${peer} is unreachable: ${detail}`)
    this.peer = peer
  }
}
