// examples/cdc.ts runs as written against a MariaDB of its own (the source, with a row binlog),
// into the shared MariaDB; and docs/cdc.md shows it as it is.

import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import { describe, expect, it } from 'vitest'
import { mysqlDropSchema } from '../src/stores/mysql/mysql-schema.js'
import { isolatedName, requireService, SERVICES } from '../test/services.js'
import { requireMariadbBinaries, startPrivateMariadb } from '../test/support/cdc/private-mariadb.test-helper.js'
import { replicate } from './cdc.js'

const SUITE = 'examples/cdc.ts (a private MariaDB 3310–3319 as source)'

if ((await requireService('MariaDB', SERVICES.MariaDB.port)) && (await requireMariadbBinaries(SUITE))) {
  describe(SUITE, () => {
    it('copies each source transaction once, and the restart resumes from the checkpoint', async () => {
      const server = await startPrivateMariadb()
      const prefix = isolatedName('cdc_example')
      try {
        const out = await replicate({
          source: { host: '127.0.0.1', port: server.port, user: 'root' },
          targetUrl: SERVICES.MariaDB.url,
          prefix,
        })
        expect(out.copy).toEqual([{ id: 1, total: 40, status: 'paid' }])
        expect(out.first).toMatchObject({ applied: 1, changes: 3, replayed: 0 })
        expect(out.second).toMatchObject({ applied: 1, changes: 1, replayed: 0 })
      } finally {
        await server.dispose()
        const pool = mysql.createPool(SERVICES.MariaDB.url)
        for (const table of ['orders', 'checkpoints']) await pool.query(`DROP TABLE IF EXISTS ${prefix}_${table}`)
        for (const statement of mysqlDropSchema({ table: `${prefix}_records` })) await pool.query(statement)
        await pool.end()
      }
    }, 90_000)
  })
}

it('docs/cdc.md shows examples/cdc.ts as it is', () => {
  const doc = readFileSync(new URL('../docs/cdc.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./cdc.ts', import.meta.url), 'utf8')
  expect(doc).toContain(`<!-- example: examples/cdc.ts -->\n\`\`\`ts\n${example}\`\`\``)
})
