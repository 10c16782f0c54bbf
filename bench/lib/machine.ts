// One line that says where the figures come from: CPU, cores, Node, OS.

import os from 'node:os'

export function machineLine(): string {
  const cpus = os.cpus()
  const model = cpus[0]?.model.trim() || 'unknown CPU'
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length
  const memGiB = Math.round(os.totalmem() / 2 ** 30)
  return `machine: ${model} x${cores}, node ${process.version}, ${os.platform()} ${os.release()} ${os.arch()}, ${memGiB} GiB RAM`
}
