// The libp2p services a node needs only to use relays (src/net/node.ts): the circuit relay v2
// client transport, identify (which relay reservations and DCUtR depend on) and DCUtR. A module of
// their own so that a direct-only node (`query run` with no relay involved) never loads them.
export { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
export { identify } from '@libp2p/identify'
export { dcutr } from '@libp2p/dcutr'
