// A logger for rocketmq-client-nodejs in tests: without one it writes ~/logs/rocketmq/*.log
// through egg-logger. Warnings and errors still reach stderr.

export const quietLogger = {
  info() {},
  debug() {},
  warn(...args: unknown[]) {
    console.warn('rocketmq-client:', ...args)
  },
  error(...args: unknown[]) {
    console.error('rocketmq-client:', ...args)
  },
}
