// idem/tiered: a Redis cache of completed outcomes in front of a durable SQL store.

export type { BloomFilterOptions, RotatingBloomFilter } from './bloom-filter.js'
export {
  type RedisCacheClient,
  type RedisCachePipeline,
  RedisResultCache,
  type RedisResultCacheOptions,
} from './redis-result-cache.js'
export type { CompletedEntry, CompletedResultCache } from './result-cache.js'
export { TieredStore, type TieredStoreOptions } from './tiered-store.js'
