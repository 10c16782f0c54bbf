// npm start [-- --seed N --messages N --customers N --crash-after-work R --publisher-retry R --crash-before-work R]

import { parseArgs } from 'node:util'
import { DEFAULT_FAULTS, DEFAULT_OPTIONS, type IncidentOptions, runIncident } from './incident.js'
import { formatReport } from './report.js'

const USAGE = `Usage: npm start -- [options]
  --seed N                 PRNG seed (default ${DEFAULT_OPTIONS.seed})
  --messages N             payment messages published (default ${DEFAULT_OPTIONS.messages})
  --customers N            customers they are spread over (default ${DEFAULT_OPTIONS.customers})
  --crash-after-work R     per delivery: crash after the work, before the ack (default ${DEFAULT_FAULTS.crashAfterWork})
  --publisher-retry R      per publish: confirmation lost, message published again (default ${DEFAULT_FAULTS.publisherRetry})
  --crash-before-work R    per delivery: crash before the work (default ${DEFAULT_FAULTS.crashBeforeWork})`

function parseOptions(argv: string[]): IncidentOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      seed: { type: 'string' },
      messages: { type: 'string' },
      customers: { type: 'string' },
      'crash-after-work': { type: 'string' },
      'publisher-retry': { type: 'string' },
      'crash-before-work': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return 'help'
  return {
    seed: integer('seed', values.seed, DEFAULT_OPTIONS.seed, 0, 2 ** 32 - 1),
    messages: integer('messages', values.messages, DEFAULT_OPTIONS.messages, 1, 1_000_000),
    customers: integer('customers', values.customers, DEFAULT_OPTIONS.customers, 1, 1_000_000),
    faults: {
      crashAfterWork: rate('crash-after-work', values['crash-after-work'], DEFAULT_FAULTS.crashAfterWork),
      publisherRetry: rate('publisher-retry', values['publisher-retry'], DEFAULT_FAULTS.publisherRetry),
      crashBeforeWork: rate('crash-before-work', values['crash-before-work'], DEFAULT_FAULTS.crashBeforeWork),
    },
  }
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}]`)
  return n
}

function rate(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text.trim() === '' || !(n >= 0 && n < 1)) throw new UsageError(`--${name} must be a number in [0, 1)`)
  return n
}

class UsageError extends Error {}

async function main(): Promise<number> {
  let options: IncidentOptions | 'help'
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    console.log(USAGE)
    return 0
  }
  console.log(formatReport(await runIncident(options)))
  return 0
}

process.exitCode = await main()
