// idem/drizzle: transaction mode on a Drizzle database or transaction (drizzle-orm is an optional peer).

export { type DrizzleAsyncLike, type DrizzleSqliteLike, drizzleExecutor, fromDrizzle } from './drizzle-database.js'
