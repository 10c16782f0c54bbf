// Transaction mode on each SQL database through its driver adapter (pg, mysql2, better-sqlite3).

import { requireService, SERVICES } from '../../test/services.js'
import { mysqlRig, postgresRig, sqliteRig } from './transaction-rigs.test-helper.js'
import { describeTransactionMode } from './transaction-suite.test-helper.js'

describeTransactionMode('SQLite (better-sqlite3)', sqliteRig)
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port))
  describeTransactionMode('PostgreSQL (pg)', postgresRig)
if (await requireService('MariaDB', SERVICES.MariaDB.port)) describeTransactionMode('MariaDB (mysql2)', mysqlRig)
