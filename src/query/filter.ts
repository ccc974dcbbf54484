// The filter language (protocols/negotiation.md §3.2): comparisons, AND/OR/NOT, IN, BETWEEN,
// IS [NOT] NULL over columns, hour()/dow()/date() of a timestamp column, and literals. Parsed into
// the FilterExpr AST — never SQL; the data layer binds every literal as a parameter.
import type { ColumnRef, FilterExpr, Literal } from './types.ts'
import { QueryError } from './errors.ts'

export const MAX_FILTER_LENGTH = 4096
export const MAX_FILTER_DEPTH = 32
export const MAX_IN_VALUES = 1000
export const MAX_LITERAL_LENGTH = 1000
export const MAX_COLUMN_LENGTH = 128

type Tok =
  | { t: 'num'; v: number; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'id'; v: string; quoted: boolean; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number }

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IN', 'BETWEEN', 'IS', 'NULL', 'TRUE', 'FALSE'])
const FUNCS = new Set(['hour', 'dow', 'date'])
// SQL words that are not part of the language: refused as bare column names so that SQL pasted
// into a filter fails loudly at the right place (quote a column that really is called "from").
const SQL_WORDS = new Set(['SELECT', 'FROM', 'WHERE', 'UNION', 'INSERT', 'UPDATE', 'DELETE', 'DROP', 'CREATE', 'ALTER',
  'TABLE', 'JOIN', 'LIKE', 'ILIKE', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'AS', 'ON', 'LIMIT', 'ORDER', 'GROUP',
  'BY', 'HAVING', 'EXISTS', 'CAST', 'WITH', 'INTO', 'VALUES', 'EXEC', 'EXECUTE', 'PRAGMA', 'ATTACH', 'DETACH', 'COPY',
  'INSTALL', 'LOAD', 'SET', 'CALL', 'DISTINCT', 'ALL', 'ANY', 'SOME', 'EXCEPT', 'INTERSECT', 'OFFSET', 'RETURNING'])
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/
/** Control and bidi-override characters; the same set validateQuery refuses in every string. */
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/

function fail(text: string, at: number, msg: string): never {
  throw new QueryError(`filter: ${msg} at position ${at + 1} ("${text.slice(at, at + 20)}")`)
}

function tokenize(text: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i] as string
    if (/\s/.test(c)) { i++; continue }
    const at = i
    if (c === "'") {
      let s = ''
      i++
      for (;;) {
        if (i >= text.length) fail(text, at, 'unterminated string')
        if (text[i] === "'") {
          if (text[i + 1] === "'") { s += "'"; i += 2; continue }
          i++
          break
        }
        s += text[i]
        i++
      }
      if (s.length > MAX_LITERAL_LENGTH) fail(text, at, `string longer than ${MAX_LITERAL_LENGTH} characters`)
      if (UNPRINTABLE.test(s)) fail(text, at, 'control or bidi-override characters in a string (validateQuery refuses them)')
      out.push({ t: 'str', v: s, at })
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1)
      if (end < 0) fail(text, at, 'unterminated quoted column name')
      const name = text.slice(i + 1, end)
      if (!name || name.length > MAX_COLUMN_LENGTH || UNPRINTABLE.test(name)) fail(text, at, `quoted column names are 1..${MAX_COLUMN_LENGTH} printable characters`)
      out.push({ t: 'id', v: name, quoted: true, at })
      i = end + 1
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9.]/.test(text[i + 1] ?? '') && !prevIsValue(out)) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i))
      if (!m) fail(text, at, 'bad number')
      const v = Number(m[0]) + 0 // -0 → 0: one canonical zero
      if (!Number.isFinite(v)) fail(text, at, 'number out of range')
      out.push({ t: 'num', v, at })
      i += m[0].length
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i)) as RegExpExecArray
      if (m[0].length > MAX_COLUMN_LENGTH) fail(text, at, `names are at most ${MAX_COLUMN_LENGTH} characters`)
      out.push({ t: 'id', v: m[0], quoted: false, at })
      i += m[0].length
    } else {
      const two = text.slice(i, i + 2)
      if (['<=', '>=', '!=', '<>'].includes(two)) {
        out.push({ t: 'op', v: two === '<>' ? '!=' : two, at })
        i += 2
      } else if ('=<>(),'.includes(c)) {
        out.push({ t: 'op', v: c, at })
        i++
      } else {
        // pasted SQL usually fails here first (on * or ;): name the SQL word that started it
        const sql = out.find((t) => t.t === 'id' && !t.quoted && SQL_WORDS.has(t.v.toUpperCase()))
        if (sql) fail(text, sql.at, `${(sql as { v: string }).v.toUpperCase()} is SQL, not part of the filter language`)
        fail(text, at, `unexpected character ${JSON.stringify(c)}`)
      }
    }
  }
  out.push({ t: 'end', at: text.length })
  return out
}

function prevIsValue(out: Tok[]): boolean {
  const p = out.at(-1)
  return p != null && (p.t === 'num' || p.t === 'str' || (p.t === 'id' && !KEYWORDS.has(p.v.toUpperCase())) || (p.t === 'op' && p.v === ')'))
}

export function parseFilter(text: string): FilterExpr {
  if (typeof text !== 'string') throw new QueryError('filter: must be a string')
  if (text.length > MAX_FILTER_LENGTH) throw new QueryError(`filter: longer than ${MAX_FILTER_LENGTH} characters`)
  const toks = tokenize(text)
  let p = 0
  const peek = (): Tok => toks[p] as Tok
  const kw = (k: string): boolean => {
    const t = peek()
    return t.t === 'id' && !t.quoted && t.v.toUpperCase() === k
  }
  const op = (o: string): boolean => {
    const t = peek()
    return t.t === 'op' && t.v === o
  }
  const expect = (o: string): void => {
    if (!op(o)) fail(text, peek().at, `expected "${o}"`)
    p++
  }
  const expectKw = (k: string): void => {
    if (!kw(k)) fail(text, peek().at, `expected ${k}`)
    p++
  }

  // `depth` counts nesting (parentheses and NOT), which bounds the recursion; the AST depth is
  // checked separately below so that text and wire form (validateQuery) share one limit.
  function or(depth: number): FilterExpr {
    const args = [and(depth)]
    while (kw('OR')) { p++; args.push(and(depth)) }
    return args.length === 1 ? (args[0] as FilterExpr) : { op: 'or', args }
  }
  function and(depth: number): FilterExpr {
    const args = [not(depth)]
    while (kw('AND')) { p++; args.push(not(depth)) }
    return args.length === 1 ? (args[0] as FilterExpr) : { op: 'and', args }
  }
  function not(depth: number): FilterExpr {
    if (depth > MAX_FILTER_DEPTH) fail(text, peek().at, `nested deeper than ${MAX_FILTER_DEPTH}`)
    if (kw('NOT')) { p++; return { op: 'not', arg: not(depth + 1) } }
    return primary(depth)
  }
  function primary(depth: number): FilterExpr {
    if (op('(')) {
      p++
      const e = or(depth + 1)
      expect(')')
      return e
    }
    const ref = columnRef()
    if (kw('IS')) {
      p++
      const negated = kw('NOT')
      if (negated) p++
      expectKw('NULL')
      return { op: 'is_null', ref, negated }
    }
    let negated = false
    if (kw('NOT')) { p++; negated = true }
    if (kw('IN')) {
      p++
      expect('(')
      const values: Literal[] = [literal()]
      while (op(',')) { p++; values.push(literal()) }
      expect(')')
      if (values.length > MAX_IN_VALUES) fail(text, peek().at, `IN lists at most ${MAX_IN_VALUES} values`)
      return { op: 'in', ref, values, negated }
    }
    if (kw('BETWEEN')) {
      p++
      const low = literal()
      expectKw('AND')
      const high = literal()
      return { op: 'between', ref, low, high, negated }
    }
    if (negated) fail(text, peek().at, 'expected IN or BETWEEN after NOT')
    const t = peek()
    if (t.t !== 'op' || !['=', '!=', '<', '<=', '>', '>='].includes(t.v)) fail(text, t.at, 'expected a comparison (=, !=, <, <=, >, >=), IN, BETWEEN or IS NULL')
    p++
    return { op: 'cmp', cmp: t.v as '=', ref, value: literal() }
  }
  function columnName(): Extract<Tok, { t: 'id' }> {
    const t = peek()
    if (t.t === 'id' && !t.quoted && SQL_WORDS.has(t.v.toUpperCase())) {
      fail(text, t.at, `${t.v.toUpperCase()} is SQL, not part of the filter language (a column named so must be "quoted")`)
    }
    if (t.t !== 'id' || (!t.quoted && KEYWORDS.has(t.v.toUpperCase()))) fail(text, t.at, 'expected a column name')
    p++
    return t
  }
  function columnRef(): ColumnRef {
    const t = columnName()
    if (!t.quoted && op('(')) {
      const fn = t.v.toLowerCase()
      if (!FUNCS.has(fn)) fail(text, t.at, `unknown function ${t.v} (known: hour, dow, date)`)
      p++
      const c = columnName()
      expect(')')
      return { column: c.v, fn: fn as 'hour' }
    }
    return { column: t.v }
  }
  function literal(): Literal {
    const t = peek()
    p++
    if (t.t === 'num' || t.t === 'str') return t.v
    if (t.t === 'id' && !t.quoted) {
      const k = t.v.toUpperCase()
      if (k === 'TRUE') return true
      if (k === 'FALSE') return false
      if (k === 'NULL') return null
    }
    return fail(text, t.at, 'expected a literal (number, \'string\', TRUE, FALSE, NULL)')
  }

  const e = or(0)
  const rest = peek()
  if (rest.t === 'id' && !rest.quoted && SQL_WORDS.has(rest.v.toUpperCase())) fail(text, rest.at, `${rest.v.toUpperCase()} is SQL, not part of the filter language`)
  if (rest.t !== 'end') fail(text, rest.at, 'unexpected text after the expression')
  if (filterDepth(e) > MAX_FILTER_DEPTH) fail(text, 0, `expression nested deeper than ${MAX_FILTER_DEPTH} levels`)
  return e
}

/** Nesting depth of the AST: a leaf is 0, and/or/not one more than their deepest argument. */
export function filterDepth(e: FilterExpr): number {
  switch (e.op) {
    case 'and':
    case 'or':
      return 1 + Math.max(...e.args.map(filterDepth))
    case 'not':
      return 1 + filterDepth(e.arg)
    default:
      return 0
  }
}

function fmtRef(r: ColumnRef): string {
  const bare = IDENT.test(r.column) && !KEYWORDS.has(r.column.toUpperCase()) && !SQL_WORDS.has(r.column.toUpperCase()) && !FUNCS.has(r.column.toLowerCase())
  const col = bare ? r.column : `"${r.column}"`
  return r.fn ? `${r.fn}(${col})` : col
}

function fmtLit(v: Literal): string {
  if (v === null) return 'NULL'
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE'
  if (typeof v === 'number') return String(v)
  return `'${v.replace(/'/g, "''")}'`
}

const group = (a: FilterExpr): string => (a.op === 'and' || a.op === 'or' ? `(${formatFilter(a)})` : formatFilter(a))

/**
 * Canonical text; parseFilter(formatFilter(e)) deep-equals e for every e validateQuery accepts.
 * Parentheses only around a nested AND/OR, so the text nests no deeper than the AST.
 */
export function formatFilter(e: FilterExpr): string {
  switch (e.op) {
    case 'and':
    case 'or':
      return e.args.map(group).join(e.op === 'and' ? ' AND ' : ' OR ')
    case 'not':
      return `NOT ${group(e.arg)}`
    case 'cmp':
      return `${fmtRef(e.ref)} ${e.cmp} ${fmtLit(e.value)}`
    case 'in':
      return `${fmtRef(e.ref)} ${e.negated ? 'NOT IN' : 'IN'} (${e.values.map(fmtLit).join(', ')})`
    case 'between':
      return `${fmtRef(e.ref)} ${e.negated ? 'NOT BETWEEN' : 'BETWEEN'} ${fmtLit(e.low)} AND ${fmtLit(e.high)}`
    case 'is_null':
      return `${fmtRef(e.ref)} IS ${e.negated ? 'NOT ' : ''}NULL`
  }
}

/** Every column a filter reads. */
export function filterColumns(e: FilterExpr | null): string[] {
  if (!e) return []
  switch (e.op) {
    case 'and':
    case 'or':
      return e.args.flatMap(filterColumns)
    case 'not':
      return filterColumns(e.arg)
    default:
      return [e.ref.column]
  }
}
