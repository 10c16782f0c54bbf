import { describe, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { createTestStore, sleep } from '../../../test/support/stores/mysql/mysql.test-helper.js'
import { describeStoreConformance } from '../../testing/index.js'

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describeStoreConformance(
    {
      name: 'MysqlStore (MariaDB)',
      // The server's clock cannot be moved: advance() sleeps, so leases are short.
      leaseMs: 300,
      ttlMs: 1300,
      create: async () => {
        const { store, cleanup } = await createTestStore()
        return { store, advance: (ms) => sleep(ms + 5), cleanup }
      },
    },
    { describe, it },
  )
}
