// The HTTP behavioural suite on Koa 3 and Koa 2, unchanged, over real sockets: on MemoryStore,
// and on RedisStore and PostgresStore when those services run.

import { requireService, SERVICES } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { KOA_RIGS } from '../../../test/support/http/koa-rig.test-helper.js'
import { memoryFixture, postgresFixture, redisFixture } from '../../../test/support/http/store-fixtures.test-helper.js'

describeHttpSuite('MemoryStore', memoryFixture, KOA_RIGS)

if (await requireService('Redis', SERVICES.Redis.port)) {
  describeHttpSuite('RedisStore', () => redisFixture('idem_koa'), KOA_RIGS)
}

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite('PostgresStore', () => postgresFixture('idem_koa'), KOA_RIGS)
}
