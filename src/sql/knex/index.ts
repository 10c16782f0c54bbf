// idem/knex: transaction mode on a Knex instance or trx (knex is an optional peer).

export { fromKnex, knexExecutor } from './knex-database.js'
