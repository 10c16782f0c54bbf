// One consumer process handling one delivery, as a queue worker would. scenario.ts starts one per
// delivery; with --crash-after-call it dies by SIGKILL once the provider has answered, before
// Idem stores the outcome, leaving the record in progress until its lease lapses.
// It prints the outcome as one JSON line.

import { parseArgs } from 'node:util'
import { Idempotency } from 'idem'
import { SqliteStore } from 'idem/sqlite'
import { type ChargeMessage, chargeConsumer, SCOPE } from './consumer.js'

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    provider: { type: 'string' },
    message: { type: 'string' },
    keys: { type: 'string', default: 'derived' },
    'crash-after-call': { type: 'boolean', default: false },
  },
})
if (values.db === undefined || values.provider === undefined || values.message === undefined) {
  throw new Error(
    'usage: consumer-process.ts --db FILE --provider URL --message JSON [--keys derived|fresh] [--crash-after-call]',
  )
}

// Every consumer process opens the same SQLite file: the lease is what keeps them apart.
const store = new SqliteStore({ client: values.db })
// A short lease so the demo's redelivery need not wait long; a redelivery that arrives while the
// dead worker's lease still holds waits for it to lapse, then takes over.
const idem = new Idempotency({ store, scope: SCOPE, ttl: '24h', lease: '1s', onInProgress: 'wait', waitTimeout: '10s' })

const consume = chargeConsumer(idem, values.provider, {
  keys: values.keys === 'fresh' ? 'fresh' : 'derived',
  afterCall: values['crash-after-call'] ? () => process.kill(process.pid, 'SIGKILL') : undefined,
})
const outcome = await consume(JSON.parse(values.message) as ChargeMessage)
console.log(JSON.stringify(outcome))
await store.close()
