// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over MemoryStore.

import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { memoryFixture } from '../../../test/support/http/store-fixtures.test-helper.js'

describeHttpSuite('MemoryStore', memoryFixture, NEST_RIGS)
