// idem/redis: the Redis store on ioredis (an optional peer dependency), standalone or Cluster.

export type { RedisArg, RedisClient, RedisPipeline } from '../../drivers/ioredis.js'
export { DEFAULT_REDIS_PREFIX, recordKey as redisRecordKey, recordSlot as redisRecordSlot } from './redis-keys.js'
export { RedisStore, type RedisStoreOptions } from './redis-store.js'
