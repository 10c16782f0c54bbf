// Plain-text tables for the benchmarks: the first and last columns left-aligned, the rest right.

export const opsFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

export const ratioText = (r: number): string => (r >= 10 ? r.toFixed(1) : r.toFixed(2))

export function formatTable(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const format = (cells: readonly string[]): string =>
    cells
      .map((cell, i) =>
        i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number),
      )
      .join('   ')
      .trimEnd()
  return [format(header), ...lines.map(format)].join('\n')
}
