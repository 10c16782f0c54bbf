// The library's decisions in the audit log: a real Idempotency over a MemoryStore, its events
// recorded by recordIdempotencyEvents in a log that verifies; the event filter and detaching.

import { describe, expect, it } from 'vitest'
import { keyring, MemoryAuditStorage, signer, verifyStorage } from '../../test/support/audit/audit.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { AuditLog } from './audit-log.js'
import { recordIdempotencyEvents } from './idempotency-events.js'
import { openEntry } from './seal.js'
import type { SealedEntry } from './types.js'

const recorded = (storage: MemoryAuditStorage) =>
  storage.entries.filter((e): e is SealedEntry => e.kind === 'entry').map((e) => openEntry(e, keyring))

describe('recordIdempotencyEvents', () => {
  it('records executed, replayed and mismatch as { type, route: scope, key, … } in a log that verifies', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring, signer, checkpoint: { everyEntries: 2 } })
    const idem = new Idempotency({ store: new MemoryStore(), scope: 'billing' })
    const stop = recordIdempotencyEvents(idem, log)

    await idem.run({ key: 'pay-1', payload: { amount: 100 } }, () => 'charged')
    expect((await idem.run({ key: 'pay-1', payload: { amount: 100 } }, () => 'again')).status).toBe('replayed')
    await expect(idem.run({ key: 'pay-1', payload: { amount: 999 } }, () => 'other')).rejects.toThrow()
    stop()
    await log.close()

    const events = recorded(storage)
    expect(events.map(({ type, route, key }) => ({ type, route, key }))).toEqual([
      { type: 'executed', route: 'billing', key: 'pay-1' },
      { type: 'replayed', route: 'billing', key: 'pay-1' },
      { type: 'mismatch', route: 'billing', key: 'pay-1' },
    ])
    expect(events[0]).toMatchObject({ attempt: 1, failed: false })
    expect(typeof events[0]?.durationMs).toBe('number')
    expect(events[1]).toMatchObject({ cached: expect.any(Boolean) })
    // Never the function's value.
    expect(JSON.stringify(events)).not.toContain('charged')
    const verified = await verifyStorage(storage)
    expect(verified).toMatchObject({ ok: true, entries: 3, unsigned: 0 })
    expect(verified.checkpoints).toBeGreaterThanOrEqual(1)
  })

  it('records only the events asked for, and nothing once detached', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring })
    const idem = new Idempotency({ store: new MemoryStore(), scope: 'orders' })
    const stop = recordIdempotencyEvents(idem, log, { events: ['replayed'] })
    await idem.run({ key: 'o-1' }, () => 1)
    await idem.run({ key: 'o-1' }, () => 1)
    stop()
    await idem.run({ key: 'o-1' }, () => 1)
    await log.close()
    expect(recorded(storage).map((e) => e.type)).toEqual(['replayed'])
    expect(() => recordIdempotencyEvents(idem, log, { events: ['nope' as never] })).toThrow(/unknown event "nope"/)
  })

  it('hands a record the log refuses to onError instead of throwing into the run', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring })
    await log.close()
    const errors: Error[] = []
    const idem = new Idempotency({ store: new MemoryStore(), scope: 's' })
    recordIdempotencyEvents(idem, log, { onError: (error) => errors.push(error) })
    expect((await idem.run({ key: 'k' }, () => 1)).status).toBe('executed')
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors.map((e) => e.message)).toEqual(['the audit log is closed'])
  })
})
