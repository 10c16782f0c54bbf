// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over
// PostgresStore (a schema of this file's own).

import pg from 'pg'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { PostgresStore } from '../../stores/postgres/index.js'

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite(
    'PostgresStore',
    async () => {
      const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 10 })
      pool.on('error', () => {})
      const schema = isolatedName('idem_nest_http')
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
    },
    NEST_RIGS,
  )
}
