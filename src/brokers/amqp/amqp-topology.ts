// The exchanges and queues idem/amqp publishes to besides the consumed queue: a dead-letter
// exchange and queue, and delay queues for retries. RabbitMQ has no per-message delay on a reject,
// so a delayed retry is a copy parked in a queue whose message TTL dead-letters it back.

import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import type { AmqpConfirmChannel } from './amqp-driver.js'

/** Delay tiers, in ms: a retry waits in the smallest tier at least as long as asked (the largest at most). */
export const DEFAULT_DELAY_TIERS: readonly number[] = [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000]

export interface DeadLetterTarget {
  exchange: string
  routingKey: string
  /** The queue Idem declares and binds, when the target is Idem's own. */
  queue?: string
}

export interface DelayQueue {
  ms: number
  queue: string
}

export function defaultDeadLetter(queue: string): Required<DeadLetterTarget> {
  return { exchange: `${queue}.idem.dlx`, routingKey: queue, queue: `${queue}.idem.dlq` }
}

/** One delay queue per tier (ms, or a duration string such as '30s'), shortest first. */
export function delayQueues(queue: string, tiers: readonly Duration[]): DelayQueue[] {
  const sorted = [...new Set(tiers.map(tierMs))].sort((a, b) => a - b)
  if (sorted.length === 0) throw new RangeError('give at least one delay tier, or retry: "requeue"')
  return sorted.map((ms) => ({ ms, queue: `${queue}.idem.delay.${ms}` }))
}

function tierMs(tier: Duration): number {
  // A number is whole milliseconds, as before tiers took strings; a string is parsed as a Duration.
  return typeof tier === 'number' ? positiveInteger(tier, 'retry.delayTiers') : toMs(tier, 'retry.delayTiers')
}

/** The tier a retry after `delayMs` waits in: never sooner than asked, except past the largest tier. */
export function delayQueueFor(queues: readonly DelayQueue[], delayMs: number): DelayQueue {
  return queues.find((q) => q.ms >= delayMs) ?? (queues[queues.length - 1] as DelayQueue)
}

/**
 * Declare the dead-letter exchange and queue (when they are Idem's) and the delay queues. Each
 * delay queue has one TTL for all its messages, so they expire in arrival order: per-message TTLs
 * in one queue would wait behind a longer TTL at the head.
 */
export async function assertTopology(
  channel: AmqpConfirmChannel,
  queue: string,
  deadLetter: DeadLetterTarget | undefined,
  delays: readonly DelayQueue[],
): Promise<void> {
  if (deadLetter?.queue !== undefined) {
    await channel.assertExchange(deadLetter.exchange, 'direct', { durable: true })
    await channel.assertQueue(deadLetter.queue, { durable: true })
    await channel.bindQueue(deadLetter.queue, deadLetter.exchange, deadLetter.routingKey)
  }
  for (const delay of delays) {
    await channel.assertQueue(delay.queue, {
      durable: true,
      arguments: {
        'x-message-ttl': delay.ms,
        // Back to the consumed queue through the default exchange.
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': queue,
      },
    })
  }
}
