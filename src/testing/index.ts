// idem/testing: the store conformance suite and a hand-driven clock, for testing any store.

export {
  type ConformanceOptions,
  describeStoreConformance,
  type StoreHarness,
  type TestApi,
} from './conformance.js'
export { ManualClock } from './manual-clock.js'
