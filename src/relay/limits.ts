// The limits a relay puts on each relayed connection, sized for runs (README "Across firewalls").
// circuit relay v2's own defaults (2 min, 128 KiB per relayed connection: @libp2p/circuit-relay-v2
// constants DEFAULT_DURATION_LIMIT, DEFAULT_DATA_LIMIT) are far below one masked vector.

export interface RelayLimits {
  /** A relayed connection is cut this long after it opened, whatever it carries. */
  duration_s: number
  /**
   * Bytes one relayed connection may carry, BOTH directions added up, over its whole life: every
   * stream on it (negotiation, masked sum, ping) and every run that reuses it count against it.
   * (js-libp2p's relay counts both directions in one counter: utils.ts createLimitedRelay.)
   */
  data_mib: number
  /** Peers holding a reservation at once: one per party behind NAT, so ≥ N for a run of N parties. */
  reservations: number
  /** A reservation expires unless refreshed (clients refresh it before it does). */
  reservation_ttl_s: number
}

/** The largest reservation cap relay.yaml accepts. */
export const MAX_RESERVATIONS_CAP = 10_000

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  // a run's phases are bounded by its query timeouts (negotiate_s + compute_s + confirm_s, each at
  // most minutes); an hour leaves a reused co-provider connection room for several runs
  duration_s: 3600,
  // 1 GiB: one provider's vector of a million cells with one slot is 8 MB; 1 GiB carries ~130 M
  // values per connection (about 13 runs of L = 10 M, the largest vector a query may have)
  data_mib: 1024,
  // N ≤ 100 parties all behind NAT, plus room for restarts (a stale reservation lingers until it expires)
  reservations: 128,
  reservation_ttl_s: 2 * 3600
}
