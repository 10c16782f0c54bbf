// Headers for messages this adapter publishes (the producer's, and the dead-letter copy). The one
// runtime use of the driver: JetStream needs the client's own MsgHdrs to encode headers, and anyone
// importing idem/nats has `nats`, its peer dependency, installed.

import { headers } from 'nats'
import type { NatsHeadersLike } from './nats-driver.js'

const MAX_HEADER_VALUE = 4096

/**
 * New headers: `copied`'s, except the `Nats-*` ones the server acts on (a copied
 * `Nats-Expected-Stream` or `Nats-Rollup` would make the server reject or mishandle the copy),
 * then `values`, each made one line.
 */
export function natsHeaders(values: Readonly<Record<string, string>> = {}, copied?: NatsHeadersLike): NatsHeadersLike {
  const h = headers()
  for (const key of copied?.keys() ?? []) {
    if (/^nats-/i.test(key)) continue
    for (const value of copied?.values(key) ?? []) h.append(key, value)
  }
  for (const [key, value] of Object.entries(values)) h.set(key, headerValue(value))
  return h
}

/** `value` as one header line (CR or LF would end the header block), at most 4 KiB. */
export function headerValue(value: string): string {
  const line = value.replace(/[\r\n]+/g, ' ')
  return line.length > MAX_HEADER_VALUE ? `${line.slice(0, MAX_HEADER_VALUE - 3)}...` : line
}
