// The HTTP behavioural suite on PostgresStore (a schema of this file's own), for every framework.

import pg from 'pg'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { PostgresStore } from '../stores/postgres/index.js'

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite('PostgresStore', async () => {
    const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 10 })
    pool.on('error', () => {})
    const schema = isolatedName('idem_http')
    const store = new PostgresStore({ client: pool, schema })
    await store.ensureSchema()
    return {
      store,
      cleanup: async () => {
        await store.close()
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      },
    }
  })
}
