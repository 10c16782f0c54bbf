// The HTTP behavioural suite on MemoryStore, for node:http, Express, Fastify and Hono.

import { describeHttpSuite } from '../../test/support/http/http-suite.test-helper.js'
import { MemoryStore } from '../index.js'

describeHttpSuite('MemoryStore', async () => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
})
