// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over
// PostgresStore (a schema of this file's own).

import { requireService, SERVICES } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { postgresFixture } from '../../../test/support/http/store-fixtures.test-helper.js'

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite('PostgresStore', () => postgresFixture('idem_nest_http'), NEST_RIGS)
}
