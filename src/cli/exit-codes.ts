// Exit codes: a contract for cron users (README "Exit codes", `mpc-agent --help`).
import { ConfigError, BusyError } from '../agent/errors.ts'
import { PolicyRejected, ProtocolAbort } from '../protocol/errors.ts'
import { rootReason } from '../protocol/abort.ts'
import { PeerUnreachableError } from '../net/errors.ts'

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  rejected: 3,
  aborted: 4,
  timeout: 5,
  badData: 6,
  busy: 7,
  unproven: 8,
  forged: 9,
  sigint: 130,
  sigterm: 143
} as const

export const EXIT_TABLE = `Exit codes:
  0    success
  1    internal error (a bug: please report it with --verbose output)
  2    usage or configuration error (flags, config.yaml, policy.yaml, key file)
  3    query rejected by a provider's policy (each provider and reason named)
  4    run aborted because a peer deviated from the protocol (accused if proven, else named in a dispute)
  5    timeout, or a peer was unreachable
  6    bad local data (missing file or column, wrong type, NULLs, out-of-domain values)
  7    busy: another run holds the lock on the same output
  8    evidence verify: the bundle is authentic but its accusation is not proven by its evidence
  9    evidence verify: not a valid bundle, or a signature in it does not verify (altered or forged)
  130  interrupted by SIGINT; 143 terminated by SIGTERM`

/** Map a thrown error to its exit code; anything unrecognised is a bug (1). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError) return EXIT.usage
  if (err instanceof PolicyRejected) return EXIT.rejected
  if (err instanceof ProtocolAbort) {
    // a relayed timeout is still a timeout (5): the reason of the original abort decides
    const r = rootReason(err.info)
    // a remote party's local failure aborted our run (4); our own data failure is 6
    return r === 'timeout' || r === 'unreachable' ? EXIT.timeout : r === 'local_error' && !err.info.by ? EXIT.badData : EXIT.aborted
  }
  if (err instanceof PeerUnreachableError) return EXIT.timeout
  if (err instanceof BusyError) return EXIT.busy
  // an altered audit log or state store is bad local data (6)
  if (err instanceof Error && (err.name === 'DataError' || err.name === 'AuditError' || err.name === 'StoreError' || err.name === 'NonceStoreError')) return EXIT.badData
  // a directory that answers outside its protocol deviates from it (protocols/directory.md §5)
  if (err instanceof Error && err.name === 'DirectoryProtocolError') return EXIT.aborted
  if (err instanceof Error && err.name === 'EvidenceUnproven') return EXIT.unproven
  if (err instanceof Error && err.name === 'EvidenceInvalid') return EXIT.forged
  if (err instanceof Error && (err.name === 'QueryError' || err.name === 'PolicyError' || err.name === 'CommanderError')) return EXIT.usage
  return EXIT.internal
}
