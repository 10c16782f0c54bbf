// An HTTP call to a payment provider, made at-least-once with idem.run and a derived key: the
// consumer is killed after the provider charged the card, the redelivery calls it again, and the
// provider still charges once. Run it: npx tsx examples/third-party-call/main.ts
// Exits 1 unless the provider created exactly one charge.

import { type ChargeReport, chargeThroughCrash, type DeliveryOutcome, MESSAGE } from './scenario.js'

function delivery(d: DeliveryOutcome, i: number): string {
  const calls = `${d.providerCalls} provider call${d.providerCalls === 1 ? '' : 's'}`
  const head = `  delivery ${i + 1} (consumer process ${i + 1}, ${calls}):`
  if (d.outcome === 'killed')
    return `${head} killed by SIGKILL after the provider answered, before Idem stored the outcome`
  if (d.outcome === 'replayed') return `${head} replayed ${d.chargeId} from Idem's record`
  return `${head} executed, attempt ${d.attempt}${d.recovered ? ' (took over the lapsed lease)' : ''}, got ${d.chargeId}`
}

function provider(r: ChargeReport): string {
  const s = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  return `${s(r.requests.length, 'request')}, ${s(r.distinctKeys, 'distinct key')}, ${s(r.charges, 'charge')}`
}

const [derived, fresh] = await Promise.all([chargeThroughCrash('derived'), chargeThroughCrash('fresh')])

console.log(
  `Payment message ${MESSAGE.id}: charge ${MESSAGE.body.customerId} ${MESSAGE.body.amount} ${MESSAGE.body.currency}`,
)
console.log("\nWith Idempotency-Key: ctx.derivedKey('charge')")
for (const [i, d] of derived.deliveries.entries()) {
  console.log(delivery(d, i))
  const left = derived.afterCrash
  if (i === 0 && left !== undefined) {
    console.log(`    it left Idem's record ${left.state}, attempt ${left.attempt}, under a ${left.leaseMs} ms lease`)
  }
}
console.log(`  the provider received ${provider(derived)}:`)
for (const r of derived.requests) {
  const answer = r.replayed ? 'its stored response, no new charge' : 'a new charge'
  console.log(`    ${r.method} ${r.path}  Idempotency-Key: ${r.idempotencyKey}  -> ${r.chargeId}, ${answer}`)
}
const freshCharges = [...new Set(fresh.requests.map((r) => r.chargeId))].join(' and ')
console.log(
  `\nWith a fresh key per attempt instead, same crash: the provider received ${provider(fresh)} (${freshCharges}).`,
)

const ok = derived.charges === 1
console.log(
  ok
    ? '\nOne logical request: the customer was charged once.'
    : `\nWRONG: ${derived.charges} charges with the derived key.`,
)
process.exitCode = ok ? 0 : 1
