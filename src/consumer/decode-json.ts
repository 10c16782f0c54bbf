// The one JSON decoder of broker payloads, with one UTF-8 rule: the bytes must be valid UTF-8.
// Invalid bytes are a decoding failure (the adapter dead-letters the message with the reason),
// never replaced by U+FFFD: a payload silently altered would be handled, fingerprinted and stored
// as something its producer never sent.

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A broker payload (bytes, or a string a driver already decoded) parsed as JSON. Throws a
 * `SyntaxError` saying why when the bytes are not valid UTF-8 or the text is not JSON; a leading
 * byte order mark is skipped.
 *
 * @example
 * ```ts
 * import { decodeJson } from 'idem/consumer'
 * decodeJson(Buffer.from('{"orderId":42}')) // { orderId: 42 }
 * decodeJson(Buffer.from([0x7b, 0xff, 0x7d])) // throws SyntaxError: the payload is not valid UTF-8
 * ```
 */
export function decodeJson(payload: Uint8Array | string): unknown {
  let text: string
  if (typeof payload === 'string') {
    text = payload.charCodeAt(0) === 0xfeff ? payload.slice(1) : payload
  } else {
    try {
      text = utf8.decode(payload)
    } catch {
      throw new SyntaxError('the payload is not valid UTF-8')
    }
  }
  return JSON.parse(text)
}
