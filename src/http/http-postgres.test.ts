// The HTTP behavioural suite on PostgresStore (a schema of this file's own), for every framework.

import { requireService, SERVICES } from '../../test/services.js'
import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { postgresFixture } from '../../test/support/http/store-fixtures.test-helper.js'

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite('PostgresStore', () => postgresFixture('idem_http'))
}
