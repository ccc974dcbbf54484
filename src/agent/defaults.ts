// Defaults a user relies on, in a module with no imports (the CLI's help needs them without loading anything).

/** The fixed, documented default port (README "Two machines"): others need a port that survives restarts. */
export const DEFAULT_PORT = 41001
