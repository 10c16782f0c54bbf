// The HTTP behavioural suite on MemoryStore, for node:http, Express, Fastify and Hono.

import { MemoryStore } from '../index.js'
import { describeHttpSuite } from './http-suite.test-helper.js'

describeHttpSuite('MemoryStore', async () => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
})
