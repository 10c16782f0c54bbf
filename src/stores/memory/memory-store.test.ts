import { describe, it } from 'vitest'
import { describeStoreConformance, ManualClock } from '../../testing/index.js'
import { MemoryStore } from './memory-store.js'

describeStoreConformance(
  {
    name: 'MemoryStore',
    create: () => {
      const clock = new ManualClock()
      const store = new MemoryStore({ clock: clock.now })
      return { store, advance: (ms) => clock.advance(ms), cleanup: () => store.close() }
    },
  },
  { describe, it },
)
