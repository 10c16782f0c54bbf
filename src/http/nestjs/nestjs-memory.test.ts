// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over MemoryStore.

import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { MemoryStore } from '../../index.js'

describeHttpSuite(
  'MemoryStore',
  async () => {
    const store = new MemoryStore()
    return { store, cleanup: () => store.close() }
  },
  NEST_RIGS,
)
