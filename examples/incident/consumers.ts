// Two consumers of the same payment messages: one with no idempotency control, one behind Idem.

import type { Idempotency } from '../../src/index.js'
import type { Delivery } from './broker.js'
import type { PaymentMessage } from './payments.js'
import { type Db, paymentEffect } from './subscriptions.js'

export type Consumer = (delivery: Delivery<PaymentMessage>) => Promise<void>

/** The incident's consumer: every delivery extends the subscription, duplicates included. */
export function naiveConsumer(db: Db): Consumer {
  const applyPayment = paymentEffect(db)
  return async (delivery) => {
    delivery.crashPoint('before-work')
    applyPayment(delivery.message)
    delivery.crashPoint('after-work') // died after the work, before the ack: the broker redelivers
    delivery.ack()
  }
}

export interface IdemConsumerStats {
  executed: number
  replayed: number
}

/** The same effect, run through `idem.run` keyed by the producer's messageId. */
export function idemConsumer(db: Db, idem: Idempotency): { consume: Consumer; stats: IdemConsumerStats } {
  const applyPayment = paymentEffect(db)
  const stats: IdemConsumerStats = { executed: 0, replayed: 0 }
  const consume: Consumer = async (delivery) => {
    const message = delivery.message
    delivery.crashPoint('before-work')
    const out = await idem.run({ key: message.messageId, payload: message }, () => applyPayment(message))
    stats[out.status]++
    // The record is completed; a crash here (before the ack) is exactly what run() protects:
    // the redelivery is replayed, not executed again.
    delivery.crashPoint('after-work')
    delivery.ack()
  }
  return { consume, stats }
}
