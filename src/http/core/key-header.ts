// Parsing the Idempotency-Key header: a Structured Field string ("…", RFC 8941 §3.3.3) as the
// IETF draft defines it, or a bare value as most clients (Stripe's included) send it.

import { MAX_KEY_LENGTH } from '../../core/key.js'

export type ParsedKey = { ok: true; key: string } | { ok: false; reason: string }

/** Characters of a bare key: visible ASCII except DQUOTE and comma (a comma means two header lines were joined). */
const BARE = /^[\x21\x23-\x2b\x2d-\x7e]+$/
/** Optional whitespace around a field value (RFC 9110 §5.6.3). */
const OWS = /^[ \t]+|[ \t]+$/g

export function parseKeyHeader(value: string | readonly string[] | number | undefined): ParsedKey | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') {
    if (typeof value === 'number') return checkLength(String(value))
    if (value.length === 1) return parseKeyHeader(value[0])
    return { ok: false, reason: 'the header was sent more than once' }
  }
  // Only HTTP's optional whitespace (SP, HTAB): String#trim would also drop NBSP, BOM and line
  // separators, making "\u00a0abc" the key "abc" instead of refusing it.
  const text = value.replace(OWS, '')
  if (text.length === 0) return { ok: false, reason: 'the key is empty' }
  if (text.startsWith('"')) return parseSfString(text)
  if (!BARE.test(text)) {
    return { ok: false, reason: 'a bare key is visible ASCII without spaces, quotes or commas; quote any other key' }
  }
  return checkLength(text)
}

/** sf-string = DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE, with printable ASCII only. */
function parseSfString(text: string): ParsedKey {
  let key = ''
  for (let i = 1; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (ch === 0x5c) {
      const next = text[++i]
      if (next !== '"' && next !== '\\')
        return { ok: false, reason: 'only \\" and \\\\ may be escaped in a quoted key' }
      key += next
    } else if (ch === 0x22) {
      if (i !== text.length - 1) return { ok: false, reason: 'unexpected characters after the closing quote' }
      return checkLength(key)
    } else if (ch < 0x20 || ch > 0x7e) {
      return { ok: false, reason: `character ${i} is not printable ASCII` }
    } else {
      key += text[i]
    }
  }
  return { ok: false, reason: 'the quoted key has no closing quote' }
}

function checkLength(key: string): ParsedKey {
  if (key.length === 0) return { ok: false, reason: 'the key is empty' }
  if (key.length > MAX_KEY_LENGTH) {
    return { ok: false, reason: `the key has ${key.length} characters, more than ${MAX_KEY_LENGTH}` }
  }
  return { ok: true, key }
}
