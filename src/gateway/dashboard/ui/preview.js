// A preview of a record's `result`: what Idem stored. For the gateway that is the JSON envelope
// `{"v": {"s": status, "h": headers, "t": text body}}` (`"b"` with base64 when the body is not
// UTF-8, `{"x": bytes}` when it was over the size limit), or `{"e": {name, message}}` for a
// stored error. Anything else is shown raw, truncated.

/**
 * @typedef {{ kind: 'none' }
 *   | { kind: 'response', status: number, contentType: string | undefined, body: string, bytes: number, truncated: boolean, encoding: 'text' | 'binary' }
 *   | { kind: 'too-large', bytes: number }
 *   | { kind: 'error', name: string, message: string }
 *   | { kind: 'raw', text: string, truncated: boolean }} Preview
 */

/**
 * @param {string | null} result
 * @param {number} [max] characters (or bytes, for a binary body) to show
 * @returns {Preview}
 */
export function previewResult(result, max = 400) {
  if (result === null) return { kind: 'none' }
  /** @type {any} */
  let parsed
  try {
    parsed = JSON.parse(result)
  } catch {
    return raw(result, max)
  }
  const value = parsed && typeof parsed === 'object' ? parsed.v : undefined
  if (value && typeof value === 'object' && typeof value.s === 'number') {
    const headers = Array.isArray(value.h) ? value.h : []
    const type = headers.find((/** @type {unknown} */ pair) => Array.isArray(pair) && pair[0] === 'content-type')
    const contentType = type ? String(type[1]) : undefined
    if (typeof value.t === 'string') {
      const bytes = new TextEncoder().encode(value.t).length
      return {
        kind: 'response',
        status: value.s,
        contentType,
        body: value.t.slice(0, max),
        bytes,
        truncated: value.t.length > max,
        encoding: 'text',
      }
    }
    if (typeof value.b === 'string') {
      const bytes = base64Bytes(value.b)
      if (bytes !== undefined) {
        const shown = bytes.subarray(0, max)
        return {
          kind: 'response',
          status: value.s,
          contentType,
          body: Array.from(shown, (byte) => byte.toString(16).padStart(2, '0')).join(' '),
          bytes: bytes.length,
          truncated: bytes.length > max,
          encoding: 'binary',
        }
      }
    }
  }
  if (value && typeof value === 'object' && typeof value.x === 'number') return { kind: 'too-large', bytes: value.x }
  const error = parsed && typeof parsed === 'object' ? parsed.e : undefined
  if (error && typeof error === 'object') {
    return { kind: 'error', name: String(error.name ?? 'Error'), message: String(error.message ?? '') }
  }
  return raw(result, max)
}

/** @param {string} text @param {number} max @returns {Preview} */
function raw(text, max) {
  return { kind: 'raw', text: text.slice(0, max), truncated: text.length > max }
}

/** @param {string} text @returns {Uint8Array | undefined} */
function base64Bytes(text) {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0))
  } catch {
    return undefined
  }
}
