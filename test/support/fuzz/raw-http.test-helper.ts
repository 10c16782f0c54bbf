// Raw HTTP/1.1 over a TCP socket, for requests fetch refuses to send (control characters, bytes
// above 0x7f, repeated or oversized header lines): the bytes go out exactly as given, and the
// reply is read until the server closes the connection.

import { connect } from 'node:net'

export interface RawReply {
  /** The status of the reply's status line; 0 when the server closed without a complete one. */
  status: number
  /** Header lines, lower-case names, in order. */
  headers: Array<[string, string]>
  body: Buffer
}

/** Send `request` to 127.0.0.1:`port` and read the whole reply (the request should ask `Connection: close`). */
export function rawRequest(port: number, request: Buffer): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // The server may reset a connection it refused after answering: what arrived is the reply.
    socket.on('error', (error) => (chunks.length > 0 ? undefined : reject(error)))
    socket.on('close', () => resolve(parseReply(Buffer.concat(chunks))))
  })
}

function parseReply(bytes: Buffer): RawReply {
  const end = bytes.indexOf('\r\n\r\n')
  const head = (end === -1 ? bytes : bytes.subarray(0, end)).toString('latin1')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  })
  return { status: match ? Number(match[1]) : 0, headers, body: end === -1 ? Buffer.alloc(0) : bytes.subarray(end + 4) }
}

/**
 * A POST of `body` to `path` whose head carries `headerLines` (each `Name: value` as raw bytes, no
 * CRLF), asking the server to close the connection after the reply.
 */
export function postWithHeaders(path: string, headerLines: readonly Buffer[], body = '{}'): Buffer {
  const head: Buffer[] = [
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`),
    Buffer.from(`Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`),
  ]
  for (const line of headerLines) head.push(line, Buffer.from('\r\n'))
  return Buffer.concat([...head, Buffer.from('\r\n'), Buffer.from(body)])
}
