// The consumer: charge the customer once per payment message. The charge is an effect outside
// Idem's store, so idem.run gives it at-least-once, and the derived key lets the provider drop
// the extra attempts: every attempt for one message sends the provider the same Idempotency-Key.

import { randomUUID } from 'node:crypto'
import type { Idempotency, RunResult } from 'idem'

export const SCOPE = 'billing:charge'

export interface ChargeMessage {
  /** Set once by the producer and kept on every copy: the idempotency key. */
  id: string
  body: { customerId: string; amount: number; currency: string }
}

export interface Charged {
  chargeId: string
  /** Which attempt made the call that Idem stored (2 after a takeover). */
  attempt: number
  recovered: boolean
}

export interface ChargeOptions {
  /** 'fresh' is the mistake the demo measures: a new key per attempt. Real code has no such option. */
  keys?: 'derived' | 'fresh'
  /** Called once the provider has answered, before Idem stores the outcome: the demo dies there. */
  afterCall?: () => void
}

export function chargeConsumer(
  idem: Idempotency,
  providerUrl: string,
  options: ChargeOptions = {},
): (message: ChargeMessage) => Promise<RunResult<Charged>> {
  return (message) =>
    idem.run({ key: message.id, payload: message.body }, async (ctx) => {
      // Derived from (scope, message id): a retry after a crash sends the very same key.
      const idempotencyKey = options.keys === 'fresh' ? randomUUID() : ctx.derivedKey('charge')
      const response = await fetch(`${providerUrl}/v1/charges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify(message.body),
        signal: ctx.signal, // aborted if this worker's lease is lost to another one
      })
      // Thrown: Idem releases the key and the broker's redelivery tries again.
      if (!response.ok) throw new Error(`the provider answered ${response.status}`)
      const charge = (await response.json()) as { id: string }
      options.afterCall?.()
      return { chargeId: charge.id, attempt: ctx.attempt, recovered: ctx.recovered }
    })
}
