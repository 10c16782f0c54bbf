// Renamed options and signatures keep working for one release: each old form warns once per
// process, saying what to use instead.

const warned = new Set<string>()

/**
 * Emit one `DeprecationWarning` (code `IDEM_DEPRECATED`) the first time `old` is used in this
 * process, naming its `replacement`. Later uses stay silent.
 */
export function warnDeprecated(old: string, replacement: string): void {
  if (warned.has(old)) return
  warned.add(old)
  process.emitWarning(`${old} is deprecated: use ${replacement} instead`, {
    type: 'DeprecationWarning',
    code: 'IDEM_DEPRECATED',
  })
}
