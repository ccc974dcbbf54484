// Bad local data or a bad dataset entry in config.yaml: exit 6, one line, caught before any
// network message when run through `data preview`; during a run the provider aborts with
// local_error and the message stays local (it may describe the data).
export class DataError extends Error {
  override name = 'DataError'
}
