import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  collect,
  keyring,
  latch,
  MemoryAuditStorage,
  scratchDir,
  signer,
  verifier,
  verifyStorage,
} from '../../test/support/audit/audit.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { AuditLog } from './audit-log.js'
import { AuditIntegrityError } from './errors.js'
import { FileAuditStorage } from './file-storage.js'
import { AuditQueueFullError } from './queue-errors.js'
import { openEntry } from './seal.js'
import type { AuditEntry, SealedEntry } from './types.js'
import { verifyAuditLog } from './verify.js'

let scratch: Awaited<ReturnType<typeof scratchDir>>
beforeAll(async () => {
  scratch = await scratchDir()
})
afterAll(async () => {
  await scratch.remove()
})

const kinds = (entries: readonly AuditEntry[]) => entries.map((e) => (e.kind === 'entry' ? e.seq : `cp${e.seq}`))
const events = (entries: readonly AuditEntry[]) =>
  entries.filter((e): e is SealedEntry => e.kind === 'entry').map((e) => openEntry(e, keyring))

/** Whether `promise` has settled after everything already queued has run (a macrotask later). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

describe('AuditLog', () => {
  it('writes recorded events in order as a chain that verifies; flush waits for the storage', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring })
    for (let i = 0; i < 5; i++) await log.record({ type: 'executed', route: 'r', i })
    await log.flush()
    expect(log.stats).toMatchObject({ queued: 0, written: 5, dropped: 0, checkpoints: 0, lastSeq: 5 })
    expect(events(storage.entries).map((e) => e.i)).toEqual([0, 1, 2, 3, 4])
    expect(await verifyAuditLog(storage.read(), { keyring })).toMatchObject({ ok: true, entries: 5, unsigned: 5 })
    await log.close()
    expect(storage.closed).toBe(true)
    // No signer: no checkpoint at close.
    expect(storage.entries).toHaveLength(5)
    await expect(log.record({ type: 'late' })).rejects.toThrow(/closed/)
  })

  it('keeps the event as it was when recorded, and refuses one that is not JSON', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring, clock: () => new Date('2030-01-02T03:04:05.678Z') })
    const event = { type: 'purged', key: 'k1' }
    await log.record(event)
    event.key = 'changed'
    const circular: Record<string, unknown> = { type: 'bad' }
    circular.self = circular
    await expect(log.record(circular as { type: string })).rejects.toBeInstanceOf(TypeError)
    await expect(log.record({ type: 'big', n: 10n })).rejects.toBeInstanceOf(TypeError)
    await log.close()
    expect(events(storage.entries)).toEqual([{ type: 'purged', key: 'k1' }])
    expect(storage.entries[0]?.time).toBe('2030-01-02T03:04:05.678Z')
  })

  it('resumes the chain after a reopen (from an entry or a checkpoint); the whole log verifies', async () => {
    const path = scratch.file('resume.jsonl')
    // First writer without a signer, so the log ends with unsigned entries.
    let log = await AuditLog.open({ storage: new FileAuditStorage({ path }), keyring })
    for (let i = 0; i < 3; i++) await log.record({ type: 'executed', session: 1, i })
    await log.close()

    log = await AuditLog.open({ storage: new FileAuditStorage({ path }), keyring, signer })
    expect(log.stats.lastSeq).toBe(3)
    for (let i = 0; i < 2; i++) await log.record({ type: 'executed', session: 2, i })
    await log.close()

    // The last entry is now a checkpoint: a third writer continues after it.
    log = await AuditLog.open({ storage: new FileAuditStorage({ path }), keyring, signer })
    expect(log.stats.lastSeq).toBe(6)
    await log.record({ type: 'executed', session: 3 })
    await log.close()

    const storage = new FileAuditStorage({ path })
    const entries = (await collect(storage.read())) as AuditEntry[]
    expect(kinds(entries)).toEqual([1, 2, 3, 4, 5, 'cp6', 7, 'cp8'])
    expect(await verifyStorage(storage)).toEqual({ ok: true, entries: 6, checkpoints: 2, signedUpTo: 7, unsigned: 0 })
  })

  it('refuses to resume on a last entry that was modified', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring })
    await log.record({ type: 'executed' })
    await log.close()
    storage.entries[0] = { ...(storage.entries[0] as SealedEntry), time: '2001-01-01T00:00:00.000Z' }
    await expect(AuditLog.open({ storage, keyring })).rejects.toBeInstanceOf(AuditIntegrityError)
  })

  it('signs a checkpoint every N entries, and after everyMs without more entries', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring, signer, checkpoint: { everyEntries: 3, everyMs: 60_000 } })
    for (let i = 0; i < 7; i++) await log.record({ type: 'executed', i })
    await log.flush()
    expect(kinds(storage.entries)).toEqual([1, 2, 3, 'cp4', 5, 6, 7, 'cp8', 9])
    expect(log.stats).toMatchObject({ written: 7, checkpoints: 2, lastSeq: 9 })
    await log.close()

    const timed = new MemoryAuditStorage()
    const quick = await AuditLog.open({ storage: timed, keyring, signer, checkpoint: { everyMs: 30 } })
    await quick.record({ type: 'executed' })
    await until('a checkpoint by time', () => quick.stats.checkpoints === 1)
    expect(kinds(timed.entries)).toEqual([1, 'cp2'])
    await quick.close()
    // Nothing after the timed checkpoint: close adds none.
    expect(kinds(timed.entries)).toEqual([1, 'cp2'])
    expect(await verifyAuditLog(timed.read(), { keyring, verifier })).toMatchObject({ ok: true, signedUpTo: 1 })
  })

  it('close writes a final checkpoint over the entries written since the last one', async () => {
    const storage = new MemoryAuditStorage()
    const log = await AuditLog.open({ storage, keyring, signer, checkpoint: { everyEntries: 2 } })
    for (let i = 0; i < 3; i++) await log.record({ type: 'executed', i })
    await log.close()
    expect(kinds(storage.entries)).toEqual([1, 2, 'cp3', 4, 'cp5'])
    expect(storage.entries.at(-1)).toMatchObject({ kind: 'checkpoint', upTo: 4, head: storage.entries[3]?.hash })
    expect(log.stats.checkpoints).toBe(2)
    expect(await verifyAuditLog(storage.read(), { keyring, verifier })).toMatchObject({ ok: true, unsigned: 0 })
  })

  describe('a full queue', () => {
    it("'block': record waits for room, in order, and flush includes it", async () => {
      const storage = new MemoryAuditStorage()
      const gate = latch()
      storage.gate = gate.promise
      const log = await AuditLog.open({ storage, keyring, queue: { max: 2, onFull: 'block' } })
      await log.record({ type: 'a' })
      await log.record({ type: 'b' })
      const third = log.record({ type: 'c' })
      const fourth = log.record({ type: 'd' })
      expect(await settled(third)).toBe(false)
      expect(log.stats).toMatchObject({ queued: 2, blocked: 2, written: 0 })
      const flushed = log.flush()
      gate.open()
      await third
      await fourth
      await flushed
      expect(events(storage.entries).map((e) => e.type)).toEqual(['a', 'b', 'c', 'd'])
      expect(log.stats).toMatchObject({ queued: 0, blocked: 0, written: 4, dropped: 0 })
      await log.close()
    })

    it("'drop': the event is dropped and counted", async () => {
      const storage = new MemoryAuditStorage()
      const gate = latch()
      storage.gate = gate.promise
      const log = await AuditLog.open({ storage, keyring, queue: { max: 2, onFull: 'drop' } })
      await log.record({ type: 'a' })
      await log.record({ type: 'b' })
      await log.record({ type: 'c' })
      expect(log.stats).toMatchObject({ queued: 2, dropped: 1 })
      gate.open()
      await log.flush()
      await log.record({ type: 'd' })
      await log.close()
      expect(events(storage.entries).map((e) => e.type)).toEqual(['a', 'b', 'd'])
      expect(log.stats).toMatchObject({ written: 3, dropped: 1 })
    })

    it("'fail': record rejects with AuditQueueFullError, so the caller can fail closed", async () => {
      const storage = new MemoryAuditStorage()
      const gate = latch()
      storage.gate = gate.promise
      const log = await AuditLog.open({ storage, keyring, queue: { max: 2, onFull: 'fail' } })
      await log.record({ type: 'a' })
      await log.record({ type: 'b' })
      const error = await log.record({ type: 'c' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(AuditQueueFullError)
      expect((error as AuditQueueFullError).max).toBe(2)
      gate.open()
      await log.flush()
      await log.record({ type: 'd' })
      await log.close()
      expect(events(storage.entries).map((e) => e.type)).toEqual(['a', 'b', 'd'])
      expect(log.stats.dropped).toBe(0)
    })
  })

  describe('a failing storage', () => {
    it('keeps the events queued while it fails, reports each failure, and loses nothing once it recovers', async () => {
      const storage = new MemoryAuditStorage()
      storage.failNext = Number.POSITIVE_INFINITY
      const errors: Error[] = []
      const log = await AuditLog.open({
        storage,
        keyring,
        signer,
        checkpoint: { everyEntries: 4 },
        queue: { max: 100 },
        retry: { initialMs: 5, maxMs: 20 },
        onError: (error) => errors.push(error),
      })
      for (let i = 0; i < 3; i++) await log.record({ type: 'executed', i })
      await until('three failed attempts', () => errors.length >= 3)
      for (let i = 3; i < 6; i++) await log.record({ type: 'executed', i })
      expect(log.stats).toMatchObject({ written: 0, lastSeq: 0 })
      expect(log.stats.queued).toBe(6)
      expect(storage.entries).toHaveLength(0)
      expect(errors[0]?.message).toBe('storage unavailable')

      storage.failNext = 0
      await log.flush()
      await log.close()
      expect(events(storage.entries).map((e) => e.i)).toEqual([0, 1, 2, 3, 4, 5])
      expect(log.stats.errors).toBe(errors.length)
      expect(await verifyAuditLog(storage.read(), { keyring, verifier })).toMatchObject({
        ok: true,
        entries: 6,
        unsigned: 0,
      })
    })

    it('does not write a batch twice when the storage kept it but the call failed', async () => {
      const storage = new MemoryAuditStorage()
      storage.failAfterStoring = 1
      const errors: Error[] = []
      const log = await AuditLog.open({
        storage,
        keyring,
        retry: { initialMs: 1 },
        onError: (error) => errors.push(error),
      })
      await log.record({ type: 'a' })
      await log.record({ type: 'b' })
      await log.flush()
      await log.record({ type: 'c' })
      await log.close()
      expect(errors.map((e) => e.message)).toEqual(['connection lost after the write'])
      expect(kinds(storage.entries)).toEqual([1, 2, 3])
      expect(await verifyAuditLog(storage.read(), { keyring })).toMatchObject({ ok: true, entries: 3 })
    })

    it('reports, and does not fork the chain, when someone else appended meanwhile', async () => {
      const storage = new MemoryAuditStorage()
      const errors: Error[] = []
      const log = await AuditLog.open({
        storage,
        keyring,
        retry: { initialMs: 1, maxMs: 5 },
        onError: (error) => errors.push(error),
      })
      await log.record({ type: 'a' })
      await log.flush()
      storage.failNext = Number.POSITIVE_INFINITY
      await log.record({ type: 'b' })
      await until('the failed append', () => errors.length >= 1)
      // Another writer's entry lands on the storage while this one retries.
      const foreign: SealedEntry = { ...(storage.entries[0] as SealedEntry), seq: 2, hash: 'f'.repeat(64) }
      storage.entries.push(foreign)
      storage.failNext = 0
      await until('a refusal to fork', () => errors.some((e) => e instanceof AuditIntegrityError))
      expect(storage.entries).toEqual([expect.objectContaining({ seq: 1 }), foreign])
      expect(log.stats).toMatchObject({ written: 1, queued: 1 })
      // Once the operator removed it, the writer goes on where it was.
      storage.entries.pop()
      await log.close()
      expect(kinds(storage.entries)).toEqual([1, 2])
      expect(await verifyAuditLog(storage.read(), { keyring })).toMatchObject({ ok: true, entries: 2 })
    })
  })
})

describe('AuditLog checkpoint.publish', () => {
  it('hands over each checkpoint once it is in the storage, in order; a failing publish is reported and the log goes on', async () => {
    const storage = new MemoryAuditStorage()
    const errors: Error[] = []
    const published: Array<{ upTo: number; stored: boolean }> = []
    let calls = 0
    const log = await AuditLog.open({
      storage,
      keyring,
      signer,
      checkpoint: {
        everyEntries: 2,
        publish: async (checkpoint) => {
          // Appended before it is published: the storage holds it already.
          published.push({ upTo: checkpoint.upTo, stored: storage.entries.some((e) => e.hash === checkpoint.hash) })
          if (++calls === 2) throw new Error('the other disk is full')
          await new Promise((resolve) => setTimeout(resolve, 5))
        },
      },
      onError: (error) => errors.push(error),
    })
    for (let i = 0; i < 5; i++) await log.record({ type: 'executed', i })
    await log.close()
    // Checkpoints after 2 and 4 entries, and the final one at close (entries 1-2, cp3, 4-5, cp6, 7, cp8).
    expect(published).toEqual([
      { upTo: 2, stored: true },
      { upTo: 5, stored: true },
      { upTo: 7, stored: true },
    ])
    expect(errors.map((e) => e.message)).toEqual(['audit log: publishing checkpoint 6 failed: the other disk is full'])
    expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 5, checkpoints: 3 })
  })
})

describe('AuditLog.close({ timeoutMs })', () => {
  it('gives up on a storage that stays down after timeoutMs and reports how many events were not written', async () => {
    const storage = new MemoryAuditStorage()
    const errors: Error[] = []
    const log = await AuditLog.open({
      storage,
      keyring,
      retry: { initialMs: 1, maxMs: 5 },
      onError: (error) => errors.push(error),
    })
    await log.record({ type: 'a' })
    await log.flush()
    storage.failNext = Number.POSITIVE_INFINITY
    for (const type of ['b', 'c', 'd']) await log.record({ type })
    const started = performance.now()
    await log.close({ timeoutMs: 100 })
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    expect(errors.at(-1)?.message).toMatch(/gave up on 3 unwritten events$/)
    expect(storage.closed).toBe(true)
    // The writer stopped: no more attempts after close returned.
    const appends = storage.appends
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(storage.appends).toBe(appends)
    expect(kinds(storage.entries)).toEqual([1])
  })

  it('closes as usual when everything is written in time', async () => {
    const storage = new MemoryAuditStorage()
    const errors: Error[] = []
    const log = await AuditLog.open({ storage, keyring, signer, onError: (error) => errors.push(error) })
    await log.record({ type: 'a' })
    await log.close({ timeoutMs: 5_000 })
    expect(errors).toEqual([])
    expect(kinds(storage.entries)).toEqual([1, 'cp2'])
    expect(storage.closed).toBe(true)
  })
})
