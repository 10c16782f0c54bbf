// One racer of transaction-racers.test.ts: a process with one connection to each database under
// test, that runs idem.transaction on the key it is told, when it is told, and answers over IPC.

import { type Attached, attach, payloadOf, type Target } from './transaction-child.test-helper.js'

export interface RacerSetup {
  index: number
  scope: string
  targets: Target[]
}

export type RacerCommand =
  /** Run `key` at `at` (ms since the epoch), so that all racers start together. */
  | { id: number; op: 'run'; dialect: Target['dialect']; key: string; at: number }
  /** Run `key`, write the effect, answer `holding`, then wait for `release` and throw (roll back). */
  | { id: number; op: 'hold'; dialect: Target['dialect']; key: string }
  | { id: number; op: 'release' }

export type RacerReply =
  | { id: number; status: 'executed' | 'replayed'; value: unknown }
  | { id: number; holding: true; session: number | null }
  | { id: number; error: string }

const setup = JSON.parse(process.argv[2] ?? '') as RacerSetup
const send = (reply: RacerReply | { ready: true; sessions: Record<string, number | null> }) => process.send?.(reply)

const databases = new Map<Target['dialect'], { attached: Attached; db: ReturnType<Attached['database']> }>()
const releases = new Map<number, () => void>()

async function run(command: Extract<RacerCommand, { op: 'run' | 'hold' }>): Promise<void> {
  const target = databases.get(command.dialect)
  if (target === undefined) throw new Error(`racer ${setup.index} has no ${command.dialect} connection`)
  const { attached: a, db } = target
  if (command.op === 'run') await new Promise((resolve) => setTimeout(resolve, Math.max(0, command.at - Date.now())))
  const outcome = await a.idem.transaction(
    db,
    { key: command.key, payload: payloadOf(command.key) },
    async (_tx, ctx) => {
      await a.addEffect(ctx.sql, command.key)
      if (command.op === 'hold') {
        const released = new Promise<void>((resolve) => releases.set(command.id, resolve))
        send({ id: command.id, holding: true, session: await a.session(ctx.sql) })
        await released
        throw new Error(`racer ${setup.index} rolls back on purpose`)
      }
      return { key: command.key, racer: setup.index }
    },
  )
  send({ id: command.id, status: outcome.status, value: outcome.value })
}

process.on('message', (command: RacerCommand) => {
  if (command.op === 'release') {
    releases.get(command.id)?.()
    return
  }
  run(command).catch((error: unknown) =>
    send({ id: command.id, error: error instanceof Error ? error.message : String(error) }),
  )
})
// The parent going away (a failed run) must not leave racers behind.
process.on('disconnect', () => process.exit(0))

const sessions: Record<string, number | null> = {}
for (const target of setup.targets) {
  // One connection per database: this racer's transactions, and the session the parent watches.
  const attached = await attach(target, { connections: 1, scope: setup.scope })
  const db = attached.database()
  databases.set(target.dialect, { attached, db })
  sessions[target.dialect] = await db.transaction((_tx, sql) => attached.session(sql))
}
send({ ready: true, sessions })
