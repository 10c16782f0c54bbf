import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, it } from 'vitest'
import { describeStoreConformance, ManualClock } from '../../testing/index.js'
import { SqliteStore } from './sqlite-store.js'

describeStoreConformance(
  {
    name: 'SqliteStore (WAL file)',
    create: () => {
      const dir = mkdtempSync(join(tmpdir(), 'idem-sqlite-'))
      const db = new Database(join(dir, 'idem.db'))
      const clock = new ManualClock()
      const store = new SqliteStore({ client: db, clock: clock.now })
      store.ensureSchema()
      return {
        store,
        advance: (ms) => clock.advance(ms),
        cleanup: async () => {
          await store.close()
          db.close()
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  },
  { describe, it },
)
