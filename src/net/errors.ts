// Network errors, kept free of libp2p imports so the CLI can map them without loading libp2p.

export class PeerUnreachableError extends Error {
  override name = 'PeerUnreachableError'
  readonly peer: string
  /** What happened, in words (net/node.ts describeDialError): refused, timeout, dropped by its allowlist. */
  readonly detail: string
  constructor(peer: string, detail: string) {
    super(`peer ${peer} is unreachable: ${detail}`)
    this.peer = peer
    this.detail = detail
  }
}
