// The outbox's crash guarantee: relay processes killed with SIGKILL mid-batch (after some publishes,
// before mark-sent) lose nothing, and an Idem-protected consumer of everything the stand-in broker
// received applies each message exactly once, though some were published twice.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import {
  consume,
  countById,
  DATABASES,
  type OutboxRig,
  spawnTsx,
} from '../../test/support/outbox/outbox-rigs.test-helper.js'

const MESSAGES = 30
/** Publishes each crashing relay confirms before it dies; each is within its first batch of 10. */
const CRASHES = [3, 5]

for (const database of DATABASES) {
  if (database.port !== null && !(await requireService(database.name, database.port))) continue

  describe(`outbox relay crashes on ${database.name}`, () => {
    let rig: OutboxRig
    beforeAll(async () => {
      rig = await database.make()
    })
    afterAll(async () => {
      await rig?.cleanup()
    })

    async function runRelayProcess(extra: string[]) {
      const relay = spawnTsx('./relay-process.worker.ts', [...rig.childArgs, '--lease', '3s', ...extra])
      const outcome = await relay.exited
      return { ...outcome, stderr: relay.stderr() }
    }

    it('loses no message and doubles no effect across relay processes killed mid-batch', async () => {
      const ids = await rig.db.transaction((_tx, sql) =>
        rig.outbox.addMany(
          sql,
          Array.from({ length: MESSAGES }, (_, i) => ({ payload: { order: i, amount: 10 + i } })),
        ),
      )

      for (const after of CRASHES) {
        const crashed = await runRelayProcess(['--crash-after', String(after)])
        expect(crashed.signal, crashed.stderr).toBe('SIGKILL')
      }
      // The crashed relays' published rows are still pending: they never got to mark them.
      expect((await rig.outbox.backlog(rig.db)).pending).toBe(MESSAGES)

      const finished = await runRelayProcess([])
      expect(finished, finished.stderr).toMatchObject({ code: 0, signal: null })
      expect(await rig.outbox.backlog(rig.db)).toMatchObject({ pending: 0, failed: 0 })

      const deliveries = (await rig.query(`SELECT id, payload FROM ${rig.published} ORDER BY n`)).map((row) => ({
        id: String(row.id),
        payload: JSON.parse(String(row.payload)) as unknown,
      }))
      const counts = countById(deliveries.map((d) => d.id))
      // Nothing lost: every message reached the broker at least once…
      expect([...counts.keys()].sort()).toEqual([...ids].sort())
      // …and the crashes caused duplicates: each crash's last publish (at least) went out again.
      const duplicates = deliveries.length - MESSAGES
      expect(duplicates).toBeGreaterThanOrEqual(CRASHES.length)
      expect(duplicates).toBeLessThanOrEqual(CRASHES.reduce((a, b) => a + b, 0))

      // The consumer applies each once: the duplicates are replays of the same ids.
      expect(await consume(rig, deliveries)).toBe(duplicates)
      for (const id of ids) expect(await rig.effect(id)).toBe(1)
    }, 90_000)
  })
}
