// A process that the crash test kills with SIGKILL in the middle of idem.transaction. It stops at
// the points it is told (before the business write, after it, just before COMMIT goes out, after
// commit), says so on stdout, and waits there to be killed. Driven by transaction-crash.test.ts,
// which starts it ahead of time: it connects, then waits for a tag on stdin that names its keys.

import { writeSync } from 'node:fs'
import { type Attached, attach, payloadOf, type Target } from './transaction-child.test-helper.js'

export type CrashPoint = 'before-write' | 'after-write' | 'before-commit' | 'after-commit'

export type CrashPlan =
  | {
      kind: 'points'
      scope: string
      /** The planted bug: the business write committed on its own, before the transaction. */
      planted: boolean
      /**
       * Run one after another, each once the previous one has stopped; 'before-commit' must be
       * last. Each on key `${point}-${tag}`.
       */
      items: { point: CrashPoint; target: Target }[]
    }
  | {
      /** Transactions on `${tag}-0`, `${tag}-1`, … one after another, until killed. */
      kind: 'stream'
      scope: string
      target: Target
    }

/** A report on stdout: a stop at a point, or the start of a stream's next transaction. */
export type CrashReport =
  | { point: CrashPoint; key: string; session: number | null }
  | { started: string; n: number; session: number | null }

// Written synchronously, so that a report made just before the thread blocks still goes out.
const report = (line: CrashReport) => writeSync(1, `${JSON.stringify(line)}\n`)
const forever = () => new Promise<never>(() => {})
/** Block this thread for good (where the adapter sends COMMIT synchronously, as better-sqlite3's does). */
const blockForever = (): never => {
  const cell = new Int32Array(new SharedArrayBuffer(4))
  for (;;) Atomics.wait(cell, 0, 0)
}

const plan = JSON.parse(process.argv[2] ?? '') as CrashPlan
// Stay alive at a stop even when no socket is open (SQLite): only a kill ends this process.
setInterval(() => {}, 1 << 30)

const connections = new Map<string, Promise<Attached>>()
function attached(target: Target): Promise<Attached> {
  const id = JSON.stringify(target)
  let connection = connections.get(id)
  if (connection === undefined) {
    connection = attach(target, { connections: 4, scope: plan.scope })
    connections.set(id, connection)
  }
  return connection
}

/** The first line on stdin. */
function readTag(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\n')
      if (end >= 0) resolve(text.slice(0, end))
    })
    process.stdin.once('end', () => reject(new Error('stdin ended before a tag came')))
  })
}

async function stopAt(
  item: { point: CrashPoint; key: string; target: Target },
  planted: boolean,
  stopped: () => void,
): Promise<never> {
  const a = await attached(item.target)
  let session: number | null = null
  const stop = () => {
    report({ point: item.point, key: item.key, session })
    stopped()
  }
  const halt = (): Promise<never> => {
    stop()
    return forever()
  }
  const haltThread = (): never => {
    stop()
    return blockForever()
  }
  const db = a.database(item.point === 'before-commit' ? haltThread : undefined)
  if (planted) await a.addEffectOutside(item.key)
  await a.idem.transaction(db, { key: item.key, payload: payloadOf(item.key) }, async (_tx, ctx) => {
    session = await a.session(ctx.sql)
    if (item.point === 'before-write') await halt()
    if (!planted) await a.addEffect(ctx.sql, item.key)
    if (item.point === 'after-write') await halt()
    return { key: item.key, by: 'child' }
  })
  if (item.point === 'after-commit') await halt()
  throw new Error(`the transaction on ${item.key} passed its stop (${item.point})`)
}

async function main(): Promise<void> {
  // Connect (and load the driver) first, so that the wait for the tag hides the start-up.
  const targets = plan.kind === 'points' ? plan.items.map((item) => item.target) : [plan.target]
  await Promise.all(targets.map(attached))
  const tag = await readTag()
  if (plan.kind === 'points') {
    for (const item of plan.items) {
      await new Promise<void>((stopped, failed) => {
        stopAt({ ...item, key: `${item.point}-${tag}` }, plan.planted, stopped).catch(failed)
      })
    }
    return
  }
  const a = await attached(plan.target)
  const db = a.database()
  const session = await db.transaction((_tx, sql) => a.session(sql))
  for (let n = 0; ; n++) {
    const key = `${tag}-${n}`
    report({ started: key, n, session })
    await a.idem.transaction(db, { key, payload: payloadOf(key) }, async (_tx, ctx) => {
      await a.addEffect(ctx.sql, key)
      return { key, by: 'child' }
    })
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`crash worker failed: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`)
  process.exit(1)
})
