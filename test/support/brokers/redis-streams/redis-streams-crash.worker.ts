// A consumer process for the crash test: a member of the group that adds each message's effect to
// a Redis hash, and hangs in the handler of one chosen message (after marking that it got there),
// so that the parent can SIGKILL it mid-handler.

import { parseArgs } from 'node:util'
import { consumeRedisStream } from '../../../../src/brokers/redis-streams/consume-redis-stream.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { linkTo } from '../../../../src/drivers/redis-link.js'
import { RedisStore } from '../../../../src/stores/redis/redis-store.js'
import { driverClient, type RedisDriver } from '../../redis-clients.test-helper.js'

const { values } = parseArgs({
  options: {
    stream: { type: 'string' },
    group: { type: 'string' },
    prefix: { type: 'string' },
    'hang-on': { type: 'string' },
    port: { type: 'string', default: '6379' },
    driver: { type: 'string', default: 'ioredis' },
  },
})
const { stream, group, prefix } = values
const hangOn = values['hang-on']
if (stream === undefined || group === undefined || prefix === undefined || hangOn === undefined) {
  throw new Error(
    'usage: redis-streams-crash.worker.ts --stream S --group G --prefix P --hang-on KEY [--port N] [--driver ioredis|node-redis]',
  )
}

const client = await driverClient(values.driver as RedisDriver, Number(values.port))
// The handler's own writes, through either driver.
const redis = linkTo(client)
const idem = new Idempotency({ store: new RedisStore({ client, prefix: `${prefix}:idem:` }), scope: 'billing' })
await consumeRedisStream<{ n: number }>({
  client,
  stream,
  group,
  consumerName: 'doomed',
  idem,
  lease: '1s',
  concurrency: 4,
  handler: async (_order, ctx) => {
    if (ctx.key === hangOn) {
      await redis.send(undefined, ['SET', `${prefix}:hung`, ctx.key])
      await new Promise(() => {}) // until SIGKILL
    }
    await redis.send(undefined, ['HINCRBY', `${prefix}:effects`, ctx.key, 1])
  },
})
console.log('consuming')
