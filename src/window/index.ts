// idem/window: time-window dedup for high-volume streams (docs/window.md).

export { type MemoryWindowOptions, MemoryWindowStore, memoryWindow } from './memory-window.js'
export { type RedisWindowOptions, RedisWindowStore, redisWindow } from './redis-window.js'
export { DedupWindow, type DedupWindowOptions, type WindowEntry, type WindowStore } from './window.js'
