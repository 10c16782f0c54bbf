// Which CdcError an error of the binlog connection becomes: that decides between reconnecting
// and stopping with a code an operator acts on.

import { describe, expect, it } from 'vitest'
import { streamError } from './errors.js'

describe('streamError', () => {
  it('tells the server refusals and undecodable events from a broken connection', () => {
    const server = (errno: number, message: string) => Object.assign(new Error(message), { errno })
    expect(streamError(server(1236, 'Could not find GTID state requested by slave')).code).toBe('POSITION_UNAVAILABLE')
    expect(streamError(server(1227, 'Access denied; you need REPLICATION SLAVE')).code).toBe('MISSING_PRIVILEGES')
    expect(streamError(new Error('Insufficient permissions to access: shop.orders')).code).toBe('MISSING_PRIVILEGES')
    expect(
      streamError(new Error('zongji cannot decode compressed transactions, so their row events are NOT being emitted'))
        .code,
    ).toBe('UNSUPPORTED_EVENT')
    expect(streamError(Object.assign(new Error('Connection lost'), { code: 'PROTOCOL_CONNECTION_LOST' })).code).toBe(
      'STREAM_FAILED',
    )
  })
})
