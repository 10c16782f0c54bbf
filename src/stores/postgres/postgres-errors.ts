// Turning pg's errors into StoreUnavailableError with the server named, so that an operator
// reading "PostgreSQL at db.internal:5432 is unreachable" knows where to look.

import type { PgQueryable } from '../../drivers/pg.js'
import { StoreUnavailableError } from '../../errors.js'

// Errors raised before a connection exists: the server cannot be reached at all.
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT'])
// A connection that existed and went away (reset by the network, or the backend terminated).
const LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', '57P01', '57P02'])
// SQLSTATE: 57P03 cannot_connect_now (starting up), 53300 too_many_connections; class 08 is
// "connection exception".
const REFUSED_SQLSTATES = new Set(['57P03', '53300'])

interface DriverError {
  message?: string
  code?: string
  address?: string
  port?: number
  errors?: DriverError[]
}

/** `host:port` of the server, from the error when the socket said, else from the pool or client. */
export function serverAddress(pool: PgQueryable | undefined, error?: unknown): string {
  const e = error as DriverError | undefined
  const socketError = e?.address !== undefined ? e : e?.errors?.find((inner) => inner.address !== undefined)
  if (socketError?.address !== undefined) return `${socketError.address}:${socketError.port ?? 5432}`
  let host = pool?.host ?? pool?.options?.host
  let port = pool?.port ?? pool?.options?.port
  const url = pool?.options?.connectionString
  if ((host === undefined || port === undefined) && url !== undefined) {
    try {
      const parsed = new URL(url)
      host ??= parsed.hostname || undefined
      port ??= parsed.port === '' ? undefined : Number(parsed.port)
    } catch {
      // Not a URL (a libpq key=value string): fall back to the defaults below.
    }
  }
  return `${host ?? process.env.PGHOST ?? 'localhost'}:${port ?? process.env.PGPORT ?? 5432}`
}

/**
 * Wrap a driver error: unreachable, connection lost, or another server failure (a missing
 * table, a statement timeout). The driver's error is the `cause`.
 */
export function storeError(error: unknown, operation: string, pool: PgQueryable | undefined): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error
  const e = (error ?? {}) as DriverError
  const code = e.code ?? e.errors?.find((inner) => inner.code !== undefined)?.code
  const detail = e.message || code || String(error)
  const where = `PostgreSQL at ${serverAddress(pool, error)}`
  let message: string
  if (
    (code !== undefined && (CONNECT_CODES.has(code) || REFUSED_SQLSTATES.has(code))) ||
    /timeout exceeded when trying to connect/i.test(detail)
  ) {
    message = `${where} is unreachable: ${detail}`
  } else if (
    (code !== undefined && (LOST_CODES.has(code) || code.startsWith('08'))) ||
    /connection terminated|not queryable|after calling end on the pool/i.test(detail)
  ) {
    message = `${where} lost the connection during ${operation}: ${detail}`
  } else {
    message = `${where} failed during ${operation}: ${detail}${code === undefined ? '' : ` (${code})`}`
  }
  return new StoreUnavailableError(message, { cause: error })
}
