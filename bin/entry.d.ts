/** The bundle's entry module URL, or null to run src/ (bin/entry.js). */
export function bundleEntry(root: string, env: Record<string, string | undefined>): string | null
