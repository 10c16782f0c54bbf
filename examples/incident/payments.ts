// The workload: customers with a subscription, and the payment messages their payments publish.

import { createPrng } from './prng.js'

export interface PaymentMessage {
  /** Set once by the producer and kept on every copy: the idempotency key. */
  messageId: string
  customerId: string
  paymentId: string
  years: number
}

export interface Customer {
  customerId: string
  /** ISO date the subscription was paid until before this run (day 1–28, so +N years is exact). */
  paidUntil: string
}

export interface Workload {
  customers: Customer[]
  messages: PaymentMessage[]
}

export function generateWorkload(seed: number, messageCount: number, customerCount: number): Workload {
  const rng = createPrng(seed, 1)
  const customers: Customer[] = []
  for (let i = 1; i <= customerCount; i++) {
    const month = String(rng.int(1, 12)).padStart(2, '0')
    const day = String(rng.int(1, 28)).padStart(2, '0')
    customers.push({ customerId: `cus_${String(i).padStart(4, '0')}`, paidUntil: `2025-${month}-${day}` })
  }
  const messageIds = new Set<string>()
  const messages: PaymentMessage[] = []
  for (let i = 1; i <= messageCount; i++) {
    let messageId: string
    do messageId = uuid(rng.next)
    while (messageIds.has(messageId))
    messageIds.add(messageId)
    const customer = customers[rng.int(0, customerCount - 1)] as Customer
    messages.push({
      messageId,
      customerId: customer.customerId,
      paymentId: `pay_${String(i).padStart(6, '0')}`,
      years: 1,
    })
  }
  return { customers, messages }
}

/** A version-4-shaped UUID from the seeded PRNG (a real producer would use crypto.randomUUID()). */
function uuid(next: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16))
  hex[12] = '4'
  hex[16] = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16)
  const s = hex.join('')
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`
}
