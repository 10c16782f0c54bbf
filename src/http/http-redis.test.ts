// The HTTP behavioural suite on RedisStore (the local Redis, a key prefix of this file's own), for every framework.

import { requireService, SERVICES } from '../../test/services.js'
import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { redisFixture } from '../../test/support/http/store-fixtures.test-helper.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  describeHttpSuite('RedisStore', () => redisFixture('idem_http'))
}
