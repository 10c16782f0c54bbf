// What of a key and of an error may reach a log: a digest of the key and of the record id (never
// the key, which for HTTP is chosen by the client, nor the record id, which contains it and, for
// HTTP, the principal's hash), and an error's name, code and message with the key taken out. Never
// the error object itself: its other fields (a driver's query parameters, a handler's payload)
// stay out.

import { createHash } from 'node:crypto'

/** Characters of an error message kept at most. */
export const MAX_MESSAGE = 500

/**
 * The digest idem/logging writes in place of a key (`keyDigest`) or a record id (`recordDigest`):
 * 16 characters of base64url SHA-256. To find the entries of a key:
 * `logDigest(key)`, or `logDigest(idem.recordId(key, scope))` for its record. A digest keeps a
 * key out of the logs' text; it does not hide a key that can be guessed.
 */
export function logDigest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 16)
}

export interface ErrorSummary {
  name: string
  message: string
  code?: string | number
}

/** What a message must not cite: the key, and the record id (which holds the key, and for HTTP the principal's hash). */
export interface Secrets {
  key: string
  id?: string
}

/** An error's name, message (without the key and record id, at most MAX_MESSAGE characters) and code. */
export function summarize(error: unknown, secrets: Secrets): ErrorSummary {
  let name: string
  let message = ''
  let code: unknown
  try {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) {
      const { name: n, message: m, code: c } = error as { name?: unknown; message?: unknown; code?: unknown }
      name = typeof n === 'string' ? n : 'Error'
      if (typeof m === 'string') message = m
      code = c
    } else {
      name = typeof error
      message = String(error)
    }
  } catch {
    name = 'Error'
  }
  const summary: ErrorSummary = { name, message: redact(message, secrets) }
  if (typeof code === 'string' || typeof code === 'number') summary.code = code
  return summary
}

/**
 * `text` without the record id (anywhere) and the key: always where it is quoted (`"key"`, how
 * Idem's own messages cite a key), and anywhere when it is 8 characters or more (a shorter key
 * would take common words with it); then cut to MAX_MESSAGE characters.
 */
export function redact(text: string, { key, id }: Secrets): string {
  let out = text
  if (id !== undefined && id !== '') out = out.split(id).join('<record>')
  if (key !== '') {
    out = out.split(`"${key}"`).join('"<key>"')
    if (key.length >= 8) out = out.split(key).join('<key>')
  }
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE)}…` : out
}
