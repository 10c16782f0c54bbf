// The HTTP behavioural suite on MemoryStore, for node:http, Express, Fastify and Hono.

import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { memoryFixture } from '../../test/support/http/store-fixtures.test-helper.js'

describeHttpSuite('MemoryStore', memoryFixture)
