// idem/kysely: transaction mode on a Kysely instance or Transaction (kysely is an optional peer).

export { fromKysely, kyselyExecutor } from './kysely-database.js'
