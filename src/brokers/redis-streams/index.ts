// idem/redis-streams: an idempotent consumer-group member and a confirming producer for Redis
// Streams, on ioredis (an optional peer dependency, typed here by the part used).

export {
  consumeRedisStream,
  type RedisStreamConsumer,
  type RedisStreamConsumerOptions,
} from './consume-redis-stream.js'
export type { RedisStreamOptions } from './redis-stream-options.js'
export {
  type RedisStreamProducer,
  type RedisStreamProducerOptions,
  redisStreamProducer,
} from './redis-stream-producer.js'
export type { RedisStreamClient, StreamArg, StreamTransaction } from './redis-streams-driver.js'
export { DEAD_LETTER_FIELDS, type StreamEntry } from './stream-group.js'
