// The incident, replayed on one database: the same payment message reaches two consumers (one
// naive, one behind idem.transaction) in four ways a broker really delivers duplicates.

import type { TransactionOutcome } from 'idem'

export interface PaymentMessage {
  /** Set once by the producer and kept on every copy: the idempotency key. */
  id: string
  body: { userId: string; amount: number }
}

export interface Renewal {
  paidUntil: string
}

/**
 * Called inside the consumer's transaction after its writes. The demo throws there to play a
 * consumer that dies before COMMIT; real handlers have no such parameter.
 */
export type BeforeCommit = () => void

export interface RenewalDatabase {
  name: string
  /** The incident's handler: one transaction per delivery, no idempotency control. */
  naive(message: PaymentMessage, beforeCommit?: BeforeCommit): Promise<Renewal>
  /** The same writes inside idem.transaction, keyed by the message id. */
  idem(message: PaymentMessage, beforeCommit?: BeforeCommit): Promise<TransactionOutcome<Renewal>>
  /** What each consumer's tables hold now, by user. */
  read(consumer: 'naive' | 'idem'): Promise<Map<string, Subscription>>
  close(): Promise<void>
}

export interface Subscription {
  paidUntil: string
  /** Rows in the payments table for this user. */
  payments: number
}

/** Every subscription starts paid until this date; one payment buys one year. */
export const PAID_UNTIL = '2026-03-15'
export const ONE_YEAR_LATER = '2027-03-15'

interface Case {
  userId: string
  what: string
  /** Hands one message to `consume` the way the broker would, returns one label per delivery. */
  deliver(consume: Consume, message: PaymentMessage): Promise<string[]>
}

type Consume = (message: PaymentMessage, beforeCommit?: BeforeCommit) => Promise<string>

export const CASES: readonly Case[] = [
  {
    userId: 'ana',
    what: 'ack lost, broker redelivers',
    deliver: async (consume, message) => [await consume(message), await consume(message)],
  },
  {
    userId: 'ben',
    what: 'publisher retries the publish',
    // A second copy of the message, published again with the same id after a lost confirmation.
    deliver: async (consume, message) => [await consume(message), await consume(structuredClone(message))],
  },
  {
    userId: 'cleo',
    what: 'two copies consumed at once',
    deliver: (consume, message) => Promise.all([consume(message), consume(structuredClone(message))]),
  },
  {
    userId: 'dan',
    what: 'crash before COMMIT, redelivered twice',
    deliver: async (consume, message) => [
      await consume(message, crashBeforeCommit),
      await consume(message),
      await consume(message),
    ],
  },
]

export const USERS = CASES.map((c) => c.userId)

class SimulatedCrash extends Error {}

function crashBeforeCommit(): never {
  throw new SimulatedCrash('the consumer died after its writes, before COMMIT')
}

export interface CaseOutcome {
  userId: string
  what: string
  deliveries: number
  /** What each delivery did: applied / crashed for the naive consumer, executed / replayed / crashed for Idem. */
  naive: string[]
  idem: string[]
  /** Read back from the database after all deliveries. */
  naiveState: Subscription
  idemState: Subscription
}

/** Deliver each case's message to both consumers, then read what their tables hold. */
export async function renewSubscriptions(db: RenewalDatabase): Promise<CaseOutcome[]> {
  const naive: Consume = async (message, beforeCommit) =>
    label(() => db.naive(message, beforeCommit).then(() => 'applied'))
  const idem: Consume = async (message, beforeCommit) =>
    label(() => db.idem(message, beforeCommit).then((out) => out.status))
  const labels: { naive: string[]; idem: string[] }[] = []
  for (const c of CASES) {
    const message: PaymentMessage = { id: `msg-${c.userId}-1`, body: { userId: c.userId, amount: 120 } }
    labels.push({ naive: await c.deliver(naive, message), idem: await c.deliver(idem, message) })
  }
  const [naiveState, idemState] = [await db.read('naive'), await db.read('idem')]
  return CASES.map((c, i) => {
    const { naive, idem } = labels[i] as { naive: string[]; idem: string[] }
    return {
      userId: c.userId,
      what: c.what,
      deliveries: idem.length,
      naive,
      idem,
      naiveState: stateOf(naiveState, c.userId),
      idemState: stateOf(idemState, c.userId),
    }
  })
}

function stateOf(states: Map<string, Subscription>, userId: string): Subscription {
  const state = states.get(userId)
  if (state === undefined) throw new Error(`no subscription for ${userId}`)
  return state
}

/** A crashed delivery is not acked: the broker redelivers it, which each case then does. */
async function label(deliver: () => Promise<string>): Promise<string> {
  try {
    return await deliver()
  } catch (error) {
    if (error instanceof SimulatedCrash) return 'crashed'
    throw error
  }
}
