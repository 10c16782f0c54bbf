// The business side shared by the HTTP examples: a charge that must happen once per key.

export interface Payment {
  id: string
  amount: number
  currency: string
}

let charged = 0

/** Charges the customer: the effect a retried POST must not repeat. */
export async function charge(input: { amount: number; currency: string }): Promise<Payment> {
  charged++
  return { id: `pay_${charged}`, amount: input.amount, currency: input.currency }
}

/** How many charges ran, to show that duplicates did not run again. */
export function chargeCount(): number {
  return charged
}
