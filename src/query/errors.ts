// A query file or query object that does not validate: exit 2, one line naming the field.
export class QueryError extends Error {
  override name = 'QueryError'
}
