// Errors a user can cause on this machine (config, keys, locks). The CLI maps each class to an
// exit code (src/cli/exit-codes.ts); messages are one line saying what is wrong and how to fix it.

/** Bad flags, config, key file or home directory: exit 2. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Another run holds the lock on the same output: exit 7. */
export class BusyError extends Error {
  override name = 'BusyError'
}
