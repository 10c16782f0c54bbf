// Splitting a statement at its placeholders, for the ORM adapters that cannot take Idem's SQL as
// it is: Knex numbers `?` itself and Drizzle builds its own parameter list. PostgreSQL's `$n` are
// found outside string literals, quoted identifiers, dollar-quoted bodies and comments.

/** A statement cut at its placeholders: `text[i]` precedes the placeholder bound to `params[order[i]]`. */
export interface SplitStatement {
  text: string[]
  order: number[]
}

const NUMBERED = /\$(\d+)/y
const DOLLAR_QUOTE = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/y
const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/

/** Cut a PostgreSQL statement at its `$1 … $n` (in the order they appear; one may repeat). */
export function splitNumbered(sql: string, paramCount: number): SplitStatement {
  const text: string[] = []
  const order: number[] = []
  let start = 0
  let i = 0
  while (i < sql.length) {
    const c = sql[i]
    const next = sql[i + 1]
    if (c === "'") {
      const escapes = (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !IDENTIFIER_CHAR.test(sql[i - 2] ?? '')
      i = endOfQuoted(sql, i, "'", escapes)
    } else if (c === '"') {
      i = endOfQuoted(sql, i, '"', false)
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i)
      i = end < 0 ? sql.length : end + 1
    } else if (c === '/' && next === '*') {
      i = endOfBlockComment(sql, i)
    } else if (c === '$' && !IDENTIFIER_CHAR.test(sql[i - 1] ?? '')) {
      NUMBERED.lastIndex = i
      const numbered = NUMBERED.exec(sql)
      if (numbered !== null) {
        const n = Number(numbered[1])
        if (n < 1 || n > paramCount) {
          throw new RangeError(`The statement uses $${n} but ${paramCount} parameters were given: ${sql}`)
        }
        text.push(sql.slice(start, i))
        order.push(n - 1)
        i += numbered[0].length
        start = i
        continue
      }
      DOLLAR_QUOTE.lastIndex = i
      const tag = DOLLAR_QUOTE.exec(sql)
      if (tag === null) {
        i++
      } else {
        const end = sql.indexOf(tag[0], i + tag[0].length)
        i = end < 0 ? sql.length : end + tag[0].length
      }
    } else {
      i++
    }
  }
  text.push(sql.slice(start))
  return { text, order }
}

/** Cut a MySQL or SQLite statement at its `?`, taken in order, as their drivers do. */
export function splitPositional(sql: string, paramCount: number): SplitStatement {
  const text = sql.split('?')
  if (text.length - 1 !== paramCount) {
    throw new RangeError(`The statement has ${text.length - 1} placeholders but ${paramCount} parameters were given`)
  }
  return { text, order: Array.from({ length: paramCount }, (_, i) => i) }
}

function endOfQuoted(sql: string, open: number, quote: string, backslashEscapes: boolean): number {
  let i = open + 1
  while (i < sql.length) {
    const c = sql[i]
    if (backslashEscapes && c === '\\') {
      i += 2
    } else if (c === quote) {
      if (sql[i + 1] !== quote) return i + 1
      i += 2
    } else {
      i++
    }
  }
  return sql.length
}

function endOfBlockComment(sql: string, open: number): number {
  let depth = 0
  let i = open
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++
      i += 2
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--
      i += 2
      if (depth === 0) return i
    } else {
      i++
    }
  }
  return sql.length
}
