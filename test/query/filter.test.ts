// The filter language: round trip on generated ASTs, precedence, literals, and everything outside
// the grammar (SQL, comments, unknown functions, unterminated strings) refused with a position.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { parseFilter, formatFilter, filterDepth, filterColumns, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH } from '../../src/query/filter.ts'
import { QueryError } from '../../src/query/errors.ts'
import type { FilterExpr, Literal } from '../../src/query/types.ts'

const col = fc.oneof(
  fc.constantFrom('zone', 'fare', 'pickup_datetime', 'select', 'SELECT', 'date', 'Hour', 'and', 'null', 'a b', "it's", 'x;y', 'ü', '--c'),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/)
)
const lit: fc.Arbitrary<Literal> = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => x + 0),
  fc.string({ maxLength: 12 }),
  fc.constantFrom("'; DROP TABLE trips; --", "''", 'NULL', '1e999'),
  fc.boolean(),
  fc.constant(null)
)
const ref = fc.record({ column: col, fn: fc.constantFrom(undefined, 'hour' as const, 'dow' as const, 'date' as const) })
  .map((r) => (r.fn ? { column: r.column, fn: r.fn } : { column: r.column }))
const leaf: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({ op: fc.constant('cmp' as const), cmp: fc.constantFrom('=' as const, '!=' as const, '<' as const, '<=' as const, '>' as const, '>=' as const), ref, value: lit }),
  fc.record({ op: fc.constant('in' as const), ref, values: fc.array(lit, { minLength: 1, maxLength: 4 }), negated: fc.boolean() }),
  fc.record({ op: fc.constant('between' as const), ref, low: lit, high: lit, negated: fc.boolean() }),
  fc.record({ op: fc.constant('is_null' as const), ref, negated: fc.boolean() })
)
const expr: fc.Arbitrary<FilterExpr> = fc.letrec<{ e: FilterExpr }>((tie) => ({
  e: fc.oneof({ depthSize: 'small' }, leaf,
    fc.record({ op: fc.constantFrom('and' as const, 'or' as const), args: fc.array(tie('e'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ op: fc.constant('not' as const), arg: tie('e') }))
})).e

const cmp = (column: string, value: Literal, c: '=' | '>' = '='): FilterExpr => ({ op: 'cmp', cmp: c, ref: { column }, value })

/** An AST of exactly `depth` levels, alternating NOT and AND/OR so both kinds of nesting count. */
function deep(depth: number): FilterExpr {
  let e = cmp('zone', 1)
  for (let i = 0; i < depth; i++) {
    e = i % 3 === 0 ? { op: 'not', arg: e } : { op: i % 3 === 1 ? 'and' : 'or', args: [e, cmp('x', i)] }
  }
  return e
}

describe('filter round trip', () => {
  it('parseFilter(formatFilter(e)) deep-equals e for generated ASTs', () => {
    fc.assert(fc.property(expr, (e) => {
      expect(parseFilter(formatFilter(e))).toEqual(e)
    }), { numRuns: 400 })
  })

  it('holds at the depth limit, and one level deeper is refused', () => {
    const e = deep(MAX_FILTER_DEPTH)
    expect(filterDepth(e)).toBe(MAX_FILTER_DEPTH)
    expect(parseFilter(formatFilter(e))).toEqual(e)
    expect(() => parseFilter(formatFilter(deep(MAX_FILTER_DEPTH + 1)))).toThrow(/nested deeper than 32/)
  })

  it('formats canonically: keywords upper case, <> as !=, quotes only where needed', () => {
    expect(formatFilter(parseFilter("zone <> 1 and not fare between -2.5 and 1e3 or \"select\" is not null"))).toBe(
      '(zone != 1 AND NOT fare BETWEEN -2.5 AND 1000) OR "select" IS NOT NULL')
    expect(formatFilter(parseFilter("hour(pickup_datetime) not in (7, 8) and \"a b\" = 'it''s'"))).toBe(
      "hour(pickup_datetime) NOT IN (7, 8) AND \"a b\" = 'it''s'")
  })
})

describe('filter grammar', () => {
  it('binds NOT tighter than AND tighter than OR', () => {
    expect(parseFilter('a = 1 OR b = 2 AND NOT c = 3')).toEqual({
      op: 'or', args: [cmp('a', 1), { op: 'and', args: [cmp('b', 2), { op: 'not', arg: cmp('c', 3) }] }]
    })
    expect(parseFilter('NOT a = 1 AND b = 2')).toEqual({ op: 'and', args: [{ op: 'not', arg: cmp('a', 1) }, cmp('b', 2)] })
    expect(parseFilter('(a = 1 OR b = 2) AND c = 3')).toEqual({ op: 'and', args: [{ op: 'or', args: [cmp('a', 1), cmp('b', 2)] }, cmp('c', 3)] })
  })

  it('parses the formats.md example, functions and literals', () => {
    expect(parseFilter('dow(pickup_datetime) BETWEEN 1 AND 5 AND trip_miles > 0')).toEqual({
      op: 'and', args: [
        { op: 'between', ref: { column: 'pickup_datetime', fn: 'dow' }, low: 1, high: 5, negated: false },
        cmp('trip_miles', 0, '>')]
    })
    expect(parseFilter("DATE(ts) >= '2024-01-01'")).toEqual({ op: 'cmp', cmp: '>=', ref: { column: 'ts', fn: 'date' }, value: '2024-01-01' })
    expect(parseFilter('x in (TRUE, false, Null, -0, .5, 2E-3)')).toEqual({
      op: 'in', ref: { column: 'x' }, values: [true, false, null, 0, 0.5, 0.002], negated: false
    })
    expect(Object.is((parseFilter('x = -0') as { value: number }).value, 0)).toBe(true)
    expect(parseFilter('x IS NULL')).toEqual({ op: 'is_null', ref: { column: 'x' }, negated: false })
  })

  it('keeps SQL inside a string literal as a plain value', () => {
    expect(parseFilter("name = '''; DROP TABLE trips; --'")).toEqual(cmp('name', "'; DROP TABLE trips; --"))
  })

  it('lists the columns a filter reads', () => {
    expect(filterColumns(parseFilter('hour(ts) = 1 AND (zone IN (1) OR NOT fare IS NULL)'))).toEqual(['ts', 'zone', 'fare'])
    expect(filterColumns(null)).toEqual([])
  })

  it.each([
    ['zone = 1; DROP TABLE trips', /unexpected character ";" at position 9/],
    ['zone = 1 -- comment', /position 10/],
    ['zone = 1 /* x */', /unexpected character "\/"/],
    ['SELECT * FROM trips', /SELECT is SQL/],
    ['zone = 1 UNION SELECT 1', /UNION is SQL/],
    ['select = 1', /SELECT is SQL, not part of the filter language \(a column named so must be "quoted"\)/],
    ['zone = (SELECT 1)', /expected a literal/],
    ['zone IN (SELECT zone FROM t)', /expected a literal/],
    ["upper(zone) = 'A'", /unknown function upper/],
    ["zone = 'unterminated", /unterminated string at position 8/],
    ['"zone = 1', /unterminated quoted column name/],
    ['zone IN ()', /expected a literal/],
    ['"a""b" = 1', /position/],
    ['zone = 1 OR', /expected a column name/],
    ['NOT', /expected a column name/],
    ['zone = 1e999', /number out of range/],
    ['zone = $1', /unexpected character "\$"/],
    ['zone = ?', /unexpected character "\?"/],
    ["zone = 'a' || 'b'", /unexpected character "\|"/],
    ['1 = 1', /expected a column name/],
    ['zone NOT = 1', /expected IN or BETWEEN after NOT/],
    ['zone BETWEEN 1 OR 2', /expected AND/],
    ['zone == 1', /expected a literal/],
    ['hour(zone, 1) = 1', /expected "\)"/],
    ['zone = 0x10', /unexpected text after the expression/],
    ['', /expected a column name/],
    ["zone = 'a\u001b[2Kb'", /control or bidi-override characters in a string/],
    ['"a\nb" = 1', /quoted column names are 1\.\.128 printable characters/],
    ['('.repeat(40) + 'zone = 1' + ')'.repeat(40), /nested deeper than 32/]
  ])('rejects %j', (text, re) => {
    expect(() => parseFilter(text)).toThrow(QueryError)
    expect(() => parseFilter(text)).toThrow(re)
  })

  it('bounds the text, names, strings and IN lists', () => {
    expect(() => parseFilter(`zone = '${'x'.repeat(MAX_FILTER_LENGTH)}'`)).toThrow(/longer than 4096/)
    expect(() => parseFilter(`${'c'.repeat(129)} = 1`)).toThrow(/at most 128/)
    expect(() => parseFilter(`zone = '${'x'.repeat(1001)}'`)).toThrow(/string longer than 1000/)
    expect(() => parseFilter(`zone IN (${Array.from({ length: 1001 }, (_, i) => i).join(',')})`)).toThrow(/at most 1000 values/)
    expect(parseFilter(`zone IN (${Array.from({ length: 1000 }, (_, i) => i).join(',')})`)).toMatchObject({ op: 'in' })
  })
})
