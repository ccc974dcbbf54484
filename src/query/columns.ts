// Which columns a query reads, by role: what a provider's policy allows per role (negotiation.md §4).
import type { Query } from './types.ts'
import { filterColumns } from './filter.ts'

export interface QueryColumns {
  filter: string[]
  group_by: string[]
  aggregates: string[]
}

const uniq = (xs: string[]): string[] => [...new Set(xs)].sort()

export function columnsOf(q: Query): QueryColumns {
  return {
    filter: uniq(filterColumns(q.filter)),
    group_by: uniq(q.group_by.map((g) => ('ref' in g.domain ? g.domain.ref.column : g.domain.column))),
    aggregates: uniq(q.aggregates.flatMap((a) => (a.kind === 'count' ? [] : [a.column])))
  }
}
