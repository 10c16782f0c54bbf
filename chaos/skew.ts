// Preloaded into a worker (node --import) to skew its clock: Date.now() runs CHAOS_SKEW_MS ahead
// (or behind, if negative). Leases are compared with the store's clock, so a worker whose clock
// is minutes off must neither steal live claims nor keep lapsed ones.

const skewMs = Number(process.env.CHAOS_SKEW_MS ?? 0)
if (skewMs !== 0) {
  const realNow = Date.now
  Date.now = () => realNow() + skewMs
}
