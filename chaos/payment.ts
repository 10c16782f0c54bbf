// The payment message of the chaos workload: `messageId` is set once by the producer and kept on
// every copy (the idempotency key), `paymentId` names the charge the ledger counts.

export interface ChaosPayment {
  messageId: string
  paymentId: string
  amountCents: number
}
