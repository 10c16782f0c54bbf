// idem/sharded: one logical store over several stores, each record on the shard its id hashes to.

export { hash32, Placement, type Shard } from './placement.js'
export {
  ShardedStore,
  type ShardedStoreOptions,
  type ShardItemFailure,
  ShardUnavailableError,
} from './sharded-store.js'
