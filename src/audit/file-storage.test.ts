import { type ChildProcess, spawn } from 'node:child_process'
import { appendFile, open, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  chain,
  collect,
  KEYS_SPEC,
  keyring,
  SIGNER_PEM,
  scratchDir,
  signer,
  verifyStorage,
} from '../../test/support/audit/audit.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { AuditLog } from './audit-log.js'
import { AuditIntegrityError } from './errors.js'
import { FileAuditStorage, type TornTail } from './file-storage.js'

const LOOP_SCRIPT = fileURLToPath(new URL('../../test/support/audit/append-loop.ts', import.meta.url))

let scratch: Awaited<ReturnType<typeof scratchDir>>
let files = 0
const freshPath = () => scratch.file(`log-${++files}.jsonl`)

beforeAll(async () => {
  scratch = await scratchDir()
})
afterAll(async () => {
  await scratch.remove()
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** The prototype of node's FileHandle, to count or fail its calls. */
async function fileHandlePrototype(path: string): Promise<object> {
  const handle = await open(path, 'r')
  await handle.close()
  return Object.getPrototypeOf(handle) as object
}

describe('FileAuditStorage', () => {
  it('appends JSON lines and reads them back in order; last() is the last one', async () => {
    const path = freshPath()
    const storage = new FileAuditStorage({ path })
    expect(await storage.last()).toBeUndefined()
    const entries = chain(5)
    await storage.append(entries.slice(0, 2))
    await storage.append(entries.slice(2))
    const text = await readFile(path, 'utf8')
    expect(text.split('\n')).toHaveLength(6)
    expect(text.endsWith('\n')).toBe(true)
    expect(await collect(storage.read())).toEqual(entries)
    expect(await storage.last()).toEqual(entries[4])
    expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 5 })
    await storage.close()
    await expect(storage.append(chain(1, entries[4]))).rejects.toThrow(/closed/)
  })

  it('last() reads the tail, not the whole file, also when its lines are longer than a read', async () => {
    const path = freshPath()
    const storage = new FileAuditStorage({ path, sync: 'none' })
    let entries = chain(400, undefined, { padding: 'p'.repeat(4000) })
    await storage.append(entries)
    // The last two lines span several 64 KiB reads each.
    const long = chain(2, entries.at(-1), { padding: 'q'.repeat(200_000) })
    await storage.append(long)
    entries = [...entries, ...long]
    const size = (await stat(path)).size
    expect(size).toBeGreaterThan(2_000_000)

    const read = vi.spyOn(
      (await fileHandlePrototype(path)) as { read: (...args: unknown[]) => Promise<unknown> },
      'read',
    )
    expect(await storage.last()).toEqual(long[1])
    const bytesAsked = read.mock.calls.reduce((sum, call) => sum + Number(call[2]), 0)
    // The last line, the one before it, and at most a chunk more: not the 2 MB before them.
    expect(bytesAsked).toBeLessThan(600_000)
    expect(bytesAsked).toBeGreaterThan(200_000)
    await storage.close()
  })

  it('reading a torn tail: last() skips it, read() yields it with its line number, verify reports it', async () => {
    const path = freshPath()
    const storage = new FileAuditStorage({ path })
    const entries = chain(3)
    await storage.append(entries)
    const partial = JSON.stringify(chain(1, entries[2])[0]).slice(0, 70)
    await appendFile(path, partial)

    expect(await storage.last()).toEqual(entries[2])
    const items = await collect(storage.read())
    expect(items).toHaveLength(4)
    expect(items[3]).toEqual({ torn: partial, position: 4 })
    expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 3, tornTail: { position: 4 } })
    // Reading changed nothing.
    expect((await readFile(path, 'utf8')).endsWith(partial)).toBe(true)
    await storage.close()
  })

  it('before its first append, moves a torn tail aside and reports it; the log stays verifiable', async () => {
    const path = freshPath()
    const first = new FileAuditStorage({ path })
    const entries = chain(3)
    await first.append(entries)
    await first.close()
    const partial = `${JSON.stringify(chain(1, entries[2])[0]).slice(0, 90)}`
    await appendFile(path, partial)
    const sizeBefore = (await stat(path)).size

    const reported: TornTail[] = []
    const storage = new FileAuditStorage({ path, onTornTail: (tail) => reported.push(tail) })
    expect(storage.tornTailOnOpen).toBeUndefined()
    const more = chain(2, entries[2])
    await storage.append(more)

    expect(reported).toHaveLength(1)
    expect(storage.tornTailOnOpen).toEqual(reported[0])
    const tail = reported[0] as TornTail
    expect(tail).toMatchObject({ path, offset: sizeBefore - partial.length, bytes: partial.length })
    expect(tail.movedTo.startsWith(`${path}.torn-`)).toBe(true)
    expect(await readFile(tail.movedTo, 'utf8')).toBe(partial)
    expect(await collect(storage.read())).toEqual([...entries, ...more])
    expect(await verifyStorage(storage)).toEqual({ ok: true, entries: 5, checkpoints: 0, signedUpTo: 0, unsigned: 5 })
    await storage.close()
  })

  it('treats a complete last line that is not JSON (zeros after an OS crash) as torn too', async () => {
    const path = freshPath()
    const entries = chain(2)
    await writeFile(path, `${entries.map((e) => JSON.stringify(e)).join('\n')}\n\0\0\0\0\n`)
    const storage = new FileAuditStorage({ path })
    expect(await storage.last()).toEqual(entries[1])
    await storage.append(chain(1, entries[1]))
    expect(storage.tornTailOnOpen?.bytes).toBe(5)
    expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 3 })
    expect(await readdir(scratch.dir)).toContain((storage.tornTailOnOpen?.movedTo ?? '').split('/').at(-1))
    await storage.close()
  })

  it('refuses to guess the end of the chain when two lines in a row are not entries', async () => {
    const path = freshPath()
    const entries = chain(2)
    await writeFile(path, `${entries.map((e) => JSON.stringify(e)).join('\n')}\nnot json\n{"torn`)
    const storage = new FileAuditStorage({ path })
    await expect(storage.last()).rejects.toBeInstanceOf(AuditIntegrityError)
    await storage.close()
  })

  it("sync 'always': an append resolves after its fsync", async () => {
    const storage = new FileAuditStorage({ path: freshPath(), sync: 'always' })
    const entries = chain(3)
    for (const [i, entry] of entries.entries()) {
      await storage.append([entry])
      expect(storage.syncs).toBe(i + 1)
    }
    await storage.close()
    expect(storage.syncs).toBe(3)
  })

  it("sync 'none': never fsyncs", async () => {
    const storage = new FileAuditStorage({ path: freshPath(), sync: 'none' })
    const entries = chain(3)
    await storage.append(entries.slice(0, 2))
    await storage.append(entries.slice(2))
    await storage.close()
    expect(storage.syncs).toBe(0)
    expect(await collect(new FileAuditStorage({ path: storage.path }).read())).toEqual(entries)
  })

  it("sync 'interval': one fsync per interval in the background, and one more on close", async () => {
    const storage = new FileAuditStorage({ path: freshPath(), sync: 'interval', syncIntervalMs: 60_000 })
    const entries = chain(4)
    await storage.append([entries[0] as (typeof entries)[number]])
    await until('the first background fsync', () => storage.syncs === 1)
    // Within the interval: written (readable at once), not fsynced.
    await storage.append(entries.slice(1, 3))
    await storage.append(entries.slice(3))
    expect(await collect(storage.read())).toEqual(entries)
    expect(storage.syncs).toBe(1)
    await storage.close()
    expect(storage.syncs).toBe(2)
  })

  it('a failed append leaves the file as it was, so that a retry writes each entry once', async () => {
    const path = freshPath()
    const storage = new FileAuditStorage({ path, sync: 'always' })
    const entries = chain(4)
    await storage.append(entries.slice(0, 2))
    const before = await readFile(path, 'utf8')
    const proto = (await fileHandlePrototype(path)) as { datasync: () => Promise<void> }
    vi.spyOn(proto, 'datasync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))
    await expect(storage.append(entries.slice(2))).rejects.toThrow(/EIO/)
    expect(await readFile(path, 'utf8')).toBe(before)
    await storage.append(entries.slice(2))
    expect(await collect(storage.read())).toEqual(entries)
    expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 4 })
    await storage.close()
  })
})

describe('FileAuditStorage under SIGKILL', () => {
  const children: ChildProcess[] = []
  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  /** Start the append loop, kill it while its last write is incomplete (or after `deadlineMs`), return once it is gone. */
  async function killMidAppend(path: string, deadlineMs: number): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', LOOP_SCRIPT, path], {
      env: { ...process.env, AUDIT_KEYS: KEYS_SPEC, AUDIT_SIGNER_PEM: SIGNER_PEM },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let stderr = ''
    let started = false
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout?.on('data', () => {
      started = true
    })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    await until(
      () => `the append loop to start (stderr: ${stderr})`,
      () => {
        if (child.exitCode !== null) throw new Error(`the append loop exited: ${stderr}`)
        return started
      },
    )
    const reader = await open(path, 'r')
    const last = Buffer.alloc(1)
    const deadline = Date.now() + deadlineMs
    try {
      // Poll the last byte: not a newline means a write is under way. A few appends happen anyway.
      for (;;) {
        const { size } = await reader.stat()
        await reader.read(last, 0, 1, size - 1)
        if ((last[0] !== 0x0a && size > 0) || Date.now() > deadline) break
      }
    } finally {
      await reader.close()
    }
    child.kill('SIGKILL')
    await exited
    expect(child.signalCode).toBe('SIGKILL')
  }

  /** Kill a loop, check what it left, continue the log with a new writer; whether the kill tore a line. */
  async function killCheckAndContinue(deadlineMs: number): Promise<boolean> {
    const path = freshPath()
    await killMidAppend(path, deadlineMs)
    const text = await readFile(path)
    const complete = text.lastIndexOf(0x0a) + 1
    const torn = complete < text.length
    const lines = text.subarray(0, complete).toString('utf8').split('\n').length - 1
    const storage = new FileAuditStorage({ path })
    const found = await verifyStorage(storage)
    expect(found.ok, found.firstBad?.reason).toBe(true)
    expect(found.entries + found.checkpoints).toBe(lines)
    expect(found.checkpoints).toBeGreaterThan(0)
    expect(found.tornTail).toEqual(torn ? { position: lines + 1 } : undefined)
    expect((await storage.last())?.seq).toBe(lines)

    // The next writer moves the torn tail aside and continues the chain: the whole log verifies.
    const reported: TornTail[] = []
    const log = await AuditLog.open({
      storage: new FileAuditStorage({ path, onTornTail: (tail) => reported.push(tail) }),
      keyring,
      signer,
    })
    await log.record({ type: 'config_reloaded' })
    await log.close()
    expect(reported.map((tail) => tail.bytes)).toEqual(torn ? [text.length - complete] : [])
    const after = await verifyStorage(storage)
    expect(after).toMatchObject({
      ok: true,
      entries: found.entries + 1,
      checkpoints: found.checkpoints + 1,
      unsigned: 0,
    })
    expect(after.tornTail).toBeUndefined()
    return torn
  }

  it('leaves a log that verifies up to its last complete entry with the torn tail reported; a new writer continues it', async () => {
    // The kill tears a line only when it lands during a write (the poll aims for one): a few runs
    // at most, each checked in full, until one did.
    let runs = 0
    let torn = false
    while (!torn && runs < 8) {
      runs++
      torn = await killCheckAndContinue(3_000)
    }
    expect(torn).toBe(true)
  }, 90_000)
})
