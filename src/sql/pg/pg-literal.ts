// Values inlined as PostgreSQL literals, for the statements transaction mode sends with BEGIN or
// COMMIT in one simple-protocol round trip (that protocol takes no parameters).

/**
 * Above this a bytea literal (two hex digits per byte) costs more to build and parse than the
 * round trip it saves: the value goes as a parameter in a round trip of its own instead.
 */
export const MAX_INLINED_BYTES = 64 * 1024

/**
 * `value` as a literal PostgreSQL reads back exactly, or undefined when it cannot be inlined.
 * Every literal is a quoted string of unknown type, so it takes the type its position needs,
 * as an untyped parameter would. A backslash makes it an E'' string with the backslash doubled,
 * so the text is the same whatever standard_conforming_strings says; U+0000 cannot be in a text
 * value at all (as a parameter it would fail too), so such a string is left to the parameter path.
 */
export function pgLiteral(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'string') return quote(value)
  if (typeof value === 'number') return Number.isSafeInteger(value) ? `'${value}'` : undefined
  if (typeof value === 'bigint') return `'${value}'`
  if (typeof value === 'boolean') return value ? "'true'" : "'false'"
  if (Buffer.isBuffer(value)) {
    return value.length <= MAX_INLINED_BYTES ? `E'\\\\x${value.toString('hex')}'` : undefined
  }
  return undefined
}

function quote(text: string): string | undefined {
  if (text.includes('\0')) return undefined
  const quoted = text.replaceAll("'", "''")
  return text.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`
}
