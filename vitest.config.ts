import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

export default defineConfig({
  resolve: {
    // Examples import 'idem' exactly as users do; in this repo that is the source tree.
    alias: [
      { find: /^idem$/, replacement: src('index.ts') },
      { find: /^idem\/sqlite$/, replacement: src('stores/sqlite/index.ts') },
      { find: /^idem\/postgres$/, replacement: src('stores/postgres/index.ts') },
      { find: /^idem\/mysql$/, replacement: src('stores/mysql/index.ts') },
      { find: /^idem\/redis$/, replacement: src('stores/redis/index.ts') },
      { find: /^idem\/tiered$/, replacement: src('stores/tiered/index.ts') },
      { find: /^idem\/sharded$/, replacement: src('stores/sharded/index.ts') },
      { find: /^idem\/testing$/, replacement: src('testing/index.ts') },
      { find: /^idem\/kysely$/, replacement: src('sql/kysely/index.ts') },
      { find: /^idem\/knex$/, replacement: src('sql/knex/index.ts') },
      { find: /^idem\/drizzle$/, replacement: src('sql/drizzle/index.ts') },
      { find: /^idem\/http$/, replacement: src('http/index.ts') },
      { find: /^idem\/express$/, replacement: src('http/express/index.ts') },
      { find: /^idem\/fastify$/, replacement: src('http/fastify/index.ts') },
      { find: /^idem\/hono$/, replacement: src('http/hono/index.ts') },
      { find: /^idem\/koa$/, replacement: src('http/koa/index.ts') },
      { find: /^idem\/nestjs$/, replacement: src('http/nestjs/index.ts') },
      { find: /^idem\/client$/, replacement: src('client/index.ts') },
      { find: /^idem\/amqp$/, replacement: src('brokers/amqp/index.ts') },
      { find: /^idem\/nats$/, replacement: src('brokers/nats/index.ts') },
      { find: /^idem\/redis-streams$/, replacement: src('brokers/redis-streams/index.ts') },
      { find: /^idem\/kafka$/, replacement: src('brokers/kafka/index.ts') },
      { find: /^idem\/rocketmq$/, replacement: src('brokers/rocketmq/index.ts') },
      { find: /^idem\/pulsar$/, replacement: src('brokers/pulsar/index.ts') },
      { find: /^idem\/consumer$/, replacement: src('consumer/index.ts') },
      { find: /^idem\/window$/, replacement: src('window/index.ts') },
      { find: /^idem\/cdc$/, replacement: src('cdc/index.ts') },
      { find: /^idem\/outbox$/, replacement: src('outbox/index.ts') },
      { find: /^idem\/guards$/, replacement: src('guards/index.ts') },
      { find: /^idem\/sql$/, replacement: src('sql/index.ts') },
      { find: /^idem\/producer$/, replacement: src('producer/index.ts') },
      { find: /^idem\/mqtt$/, replacement: src('brokers/mqtt/index.ts') },
      { find: /^idem\/metrics$/, replacement: src('telemetry/metrics/index.ts') },
      { find: /^idem\/tracing$/, replacement: src('telemetry/tracing/index.ts') },
      { find: /^idem\/logging$/, replacement: src('telemetry/logging/index.ts') },
      { find: /^idem\/anomalies$/, replacement: src('telemetry/anomalies/index.ts') },
      { find: /^idem\/gateway$/, replacement: src('gateway/index.ts') },
      { find: /^idem\/audit$/, replacement: src('audit/index.ts') },
    ],
  },
  test: {
    include: [
      'src/**/*.test.ts',
      'test/**/*.test.ts',
      'examples/**/*.test.ts',
      'soak/**/*.test.ts',
      'chaos/**/*.test.ts',
    ],
    // Most suites wait on servers and brokers, not on the CPU. Vitest's default (one file per core
    // but one) ran a file at a time on a 2-core machine with the CPU half idle; two at a time took
    // the suite from 796 s to 479 s there, every test passing.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // In CI, also write a JSON summary that .ci/run turns into its closing "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.vitest-results.json' }]] : ['default'],
  },
})
