// The chaos run's own parts: the proxy's faults (cut, latency, blackhole) against a local echo
// server, and the judge's counting of doubles and losses, from rows and from the ledger table.

import { connect, createServer, type Server, type Socket } from 'node:net'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { requireService, SERVICES } from '../test/services.js'
import type { CombinationResult } from './combination.js'
import { judge, type Verdict } from './judge.js'
import { charge, ensureLedger, ledgerRows } from './ledger.js'
import { ChaosProxy } from './proxy.js'
import { failures } from './table.js'

/** Resolve once `check` holds, polling on the event loop (setImmediate: never faked below). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 1_000_000) throw new Error('condition never held')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('ChaosProxy', () => {
  let echo: Server
  let serverSockets: Socket[]
  let received: string
  let proxy: ChaosProxy
  const clients: Socket[] = []

  beforeEach(async () => {
    serverSockets = []
    received = ''
    echo = createServer((socket) => {
      serverSockets.push(socket)
      socket.on('error', () => {})
      socket.on('data', (chunk) => {
        received += chunk
        socket.write(chunk)
      })
    })
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()))
    const address = echo.address()
    proxy = new ChaosProxy({ listenPort: 0, targetPort: typeof address === 'object' && address ? address.port : 0 })
    await proxy.start()
  })

  afterEach(async () => {
    vi.useRealTimers()
    for (const c of clients.splice(0)) c.destroy()
    await proxy.close()
    for (const s of serverSockets) s.destroy()
    await new Promise<void>((resolve) => echo.close(() => resolve()))
  })

  /** A client through the proxy, with what it has read so far and whether it was closed. */
  async function client(): Promise<{ socket: Socket; read: () => string; closed: () => boolean }> {
    const socket = connect({ port: proxy.port, host: '127.0.0.1' })
    clients.push(socket)
    let read = ''
    let closed = false
    socket.on('data', (chunk) => {
      read += chunk
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      closed = true
    })
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    return { socket, read: () => read, closed: () => closed }
  }

  it('pipes both ways', async () => {
    const c = await client()
    c.socket.write('ping')
    await until(() => c.read() === 'ping')
    expect(received).toBe('ping')
  })

  it('cut resets every open connection, and new ones go through', async () => {
    const a = await client()
    const b = await client()
    a.socket.write('x')
    await until(() => a.read() === 'x')
    b.socket.write('y')
    await until(() => b.read() === 'y')
    expect(proxy.cut()).toBe(2)
    await until(() => a.closed() && b.closed())
    await until(() => serverSockets.every((s) => s.destroyed || s.readableEnded))
    const c = await client()
    c.socket.write('z')
    await until(() => c.read() === 'z')
  })

  it('latency holds each chunk until its time, in order, even when the latency drops meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const c = await client()
    proxy.setLatency(60_000)
    c.socket.write('a')
    await until(() => proxy.queued === 1)
    // A chunk sent after the latency dropped still waits behind the first one.
    proxy.setLatency(0)
    c.socket.write('b')
    await until(() => proxy.queued === 2)
    vi.advanceTimersByTime(59_999)
    expect(proxy.queued).toBe(2)
    expect(received).toBe('')
    vi.advanceTimersByTime(1)
    expect(proxy.queued).toBe(0)
    await until(() => c.read() === 'ab')
    expect(received).toBe('ab')
  })

  it('blackhole accepts and never answers, swallows what open links send, and cuts them when it ends', async () => {
    const open = await client()
    open.socket.write('1')
    await until(() => open.read() === '1')
    const connectionsBefore = serverSockets.length

    proxy.setBlackhole(true)
    const held = await client() // connects: the proxy accepts
    await until(() => proxy.held === 1)
    held.socket.write('lost')
    open.socket.write('also lost')
    await until(() => proxy.droppedBytes === 'lost'.length + 'also lost'.length)
    expect(serverSockets.length).toBe(connectionsBefore) // the server never saw the held connection
    expect(received).toBe('1')
    expect(held.read()).toBe('')

    proxy.setBlackhole(false)
    await until(() => open.closed() && held.closed())
    expect(proxy.held).toBe(0)
    const after = await client()
    after.socket.write('back')
    await until(() => after.read() === 'back')
  })
})

describe('judge', () => {
  it('counts a double and a loss', () => {
    const verdict = judge(
      ['pay_1', 'pay_2', 'pay_3'],
      [
        { payment: 'pay_1', attempt: 1 },
        { payment: 'pay_2', attempt: 1 },
        { payment: 'pay_2', attempt: 1 },
      ],
    )
    expect(verdict).toEqual({ applied: 2, doubled: 1, takeoverDoubles: 0, wipeDoubles: 0, lost: 1, unknown: 0 })
  })

  it('tells a double by a takeover (two claims) from one under a single claim', () => {
    const verdict = judge(
      ['pay_1', 'pay_2'],
      [
        { payment: 'pay_1', attempt: 1 },
        { payment: 'pay_1', attempt: 2 },
        { payment: 'pay_2', attempt: 0 },
        { payment: 'pay_2', attempt: 0 },
        { payment: 'pay_2', attempt: 0 },
      ],
    )
    expect(verdict).toEqual({ applied: 2, doubled: 3, takeoverDoubles: 1, wipeDoubles: 0, lost: 0, unknown: 0 })
  })

  it('counts a double whose first charge came before a wipe and the second after it apart', () => {
    // The store was killed at 1000 and back, empty, at 1200.
    const wipes = [{ killedAt: 1000, upAt: 1200 }]
    const verdict = judge(
      ['pay_1', 'pay_2', 'pay_3', 'pay_4'],
      [
        // Charged before the wipe, then again after it under a fresh record (attempt 1 again).
        { payment: 'pay_1', attempt: 1, chargedAt: 900 },
        { payment: 'pay_1', attempt: 1, chargedAt: 1500 },
        // Charged while the store was down (its claim came before the kill), then again after.
        { payment: 'pay_2', attempt: 1, chargedAt: 1100 },
        { payment: 'pay_2', attempt: 1, chargedAt: 1300 },
        // A takeover before the wipe, then a charge after it.
        { payment: 'pay_3', attempt: 1, chargedAt: 500 },
        { payment: 'pay_3', attempt: 2, chargedAt: 800 },
        { payment: 'pay_3', attempt: 1, chargedAt: 1400 },
        // Twice under one claim, both after the wipe: Idem failed, the wipe does not excuse it.
        { payment: 'pay_4', attempt: 1, chargedAt: 1300 },
        { payment: 'pay_4', attempt: 1, chargedAt: 1350 },
      ],
      wipes,
    )
    expect(verdict).toEqual({ applied: 4, doubled: 5, takeoverDoubles: 1, wipeDoubles: 3, lost: 0, unknown: 0 })
  })

  it('counts charges of payments never published apart', () => {
    expect(
      judge(
        ['pay_1'],
        [
          { payment: 'pay_1', attempt: 1 },
          { payment: 'pay_9', attempt: 1 },
        ],
      ).unknown,
    ).toBe(1)
  })
})

describe('the verdict', () => {
  /** A combination's result with these doubles and nothing else amiss. */
  function doubledBehindIdem(store: string, doubles: Partial<Verdict>): CombinationResult {
    const verdict = { applied: 10, doubled: 0, takeoverDoubles: 0, wipeDoubles: 0, lost: 0, unknown: 0, ...doubles }
    return {
      name: `nats.${store}`,
      store,
      naive: false,
      verdict,
      deadLettered: 0,
      errors: [],
    } as unknown as CombinationResult
  }

  it('shows doubles after a wipe without failing, and fails them with strict', () => {
    const wiped = doubledBehindIdem('redis', { doubled: 5, takeoverDoubles: 1, wipeDoubles: 4 })
    expect(failures([wiped], false)).toEqual([])
    expect(failures([wiped], true)).toHaveLength(1)
  })

  it('fails a double under one claim, wipes or not', () => {
    const underOneClaim = doubledBehindIdem('redis', { doubled: 5, wipeDoubles: 4 })
    expect(failures([underOneClaim], false)).toHaveLength(1)
  })

  it('fails any double in each transaction mode', () => {
    for (const store of ['transaction-postgres', 'transaction-mysql', 'transaction-sqlite']) {
      expect(failures([doubledBehindIdem(store, { doubled: 1, takeoverDoubles: 1 })], false)).toHaveLength(1)
    }
  })
})

if (await requireService('PostgreSQL', 5432)) {
  describe('the ledger table', () => {
    it('keeps every charge of a payment, so the judge sees the double and the loss', async () => {
      const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 2 })
      const run = `test-${process.pid}-${Date.now()}`
      try {
        const setup = await pool.connect()
        await ensureLedger(setup).finally(() => setup.release())
        await charge(pool, { run, combo: 'c', payment: 'pay_1', attempt: 1 })
        await charge(pool, { run, combo: 'c', payment: 'pay_1', attempt: 1 })
        await charge(pool, { run, combo: 'other', payment: 'pay_2', attempt: 1 })
        const verdict = judge(['pay_1', 'pay_2'], await ledgerRows(pool, run, 'c'))
        expect(verdict).toMatchObject({ applied: 1, doubled: 1, lost: 1 })
      } finally {
        await pool.query('DELETE FROM chaos_ledger WHERE run = $1', [run]).catch(() => {})
        await pool.end()
      }
    })
  })
}
