// The HTTP behavioural suite on SqliteStore (a WAL file in a temp dir), for every framework.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { SqliteStore } from '../stores/sqlite/index.js'

describeHttpSuite('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idem-http-'))
  const store = new SqliteStore({ client: join(dir, 'idem.db') })
  store.ensureSchema()
  return {
    store,
    cleanup: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
