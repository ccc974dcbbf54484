// The directory of peers (protocols/directory.md): it brokers signed peer entries; it never
// decides who talks to whom. Server: mountDirectory on any libp2p node. Client: publishEntry,
// discoverEntries.
export { DIRECTORY_PROTOCOL } from './constants.ts'
export { mountDirectory, type DirectoryOptions, type MountedDirectory } from './server.ts'
export { DirectoryRegistry, SEQ_RETENTION_MS } from './registry.ts'
export { publishEntry, discoverEntries, DirectoryRefusedError, type Discovered } from './client.ts'
export { DirectoryProtocolError } from './messages.ts'
