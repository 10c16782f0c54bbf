// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over RedisStore
// (the local Redis, a key prefix of this file's own).

import { requireService, SERVICES } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { redisFixture } from '../../../test/support/http/store-fixtures.test-helper.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  describeHttpSuite('RedisStore', () => redisFixture('idem_nest_http'), NEST_RIGS)
}
