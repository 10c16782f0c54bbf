// idem/redis-streams: an idempotent consumer-group member and a confirming producer for Redis
// Streams, on ioredis or node-redis (optional peer dependencies, typed here by the part used).

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export {
  type ConsumeRedisStreamOptions,
  consumeRedisStream,
  type RedisStreamConsumer,
  type RedisStreamConsumerOptions,
  type RedisStreamHandle,
} from './consume-redis-stream.js'
export type { AnyRedisStreamClient, NodeRedisStreamClient } from './node-redis-stream-client.js'
export type { RedisStreamOptions } from './redis-stream-options.js'
export {
  type RedisStreamProducer,
  type RedisStreamProducerOptions,
  redisStreamProducer,
} from './redis-stream-producer.js'
export type { RedisStreamClient, StreamArg, StreamTransaction } from './redis-streams-driver.js'
export { DEAD_LETTER_FIELDS, type StreamEntry } from './stream-group.js'
