// One confirmed publish, shared by the producer and the consumer's dead-lettering: resolve on
// PUBACK/PUBCOMP, reject on an error code, on "no matching subscribers" when the message must
// reach someone, and when no confirmation arrives in time.

import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import { ackReasons, NO_MATCHING_SUBSCRIBERS, sentMessageId } from './ack-reasons.js'
import type { MqttPublisherClient, MqttPublishOptions } from './mqtt-client.js'

export interface ConfirmOptions {
  /** Treat reason code 16 (no subscription matched, the broker dropped the message) as a failure. */
  requireSubscriber: boolean
  /** Give up waiting after this many ms. The message may still arrive; publishing again with the same id is safe. */
  timeoutMs: number
}

/**
 * The broker did not confirm a publish (an error reason code, no matching subscriber when one is
 * required, a failed connection, or no confirmation in time). A `PublishNotConfirmedError` (code
 * `PUBLISH_NOT_CONFIRMED`), as every producer's: publishing again with the same id is safe.
 */
export class MqttPublishError extends PublishNotConfirmedError {
  /** The broker's reason code, when it answered. */
  readonly reasonCode: number | undefined

  constructor(message: string, reasonCode?: number, options: { cause?: unknown; messageId?: string } = {}) {
    super(message, options)
    this.name = 'MqttPublishError'
    this.reasonCode = reasonCode
  }
}

export async function publishConfirmed(
  client: MqttPublisherClient,
  topic: string,
  payload: string | Buffer,
  publishOptions: MqttPublishOptions,
  confirm: ConfirmOptions,
): Promise<void> {
  const reasons = ackReasons(client)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new MqttPublishError(`no confirmation for a publish to ${topic} within ${confirm.timeoutMs} ms`)),
      confirm.timeoutMs,
    )
  })
  let sent: unknown
  try {
    sent = await Promise.race([client.publishAsync(topic, payload, publishOptions), timeout])
  } catch (error) {
    if (error instanceof MqttPublishError) throw error
    const code = (error as { code?: unknown }).code
    throw new MqttPublishError(`publish to ${topic} failed: ${(error as Error).message}`, Number(code) || undefined, {
      cause: error,
    })
  } finally {
    clearTimeout(timer)
  }
  const code = reasons.take(sentMessageId(sent))
  if (confirm.requireSubscriber && code === NO_MATCHING_SUBSCRIBERS) {
    throw new MqttPublishError(
      `the broker dropped a publish to ${topic}: no subscription matches it (reason code 16)`,
      NO_MATCHING_SUBSCRIBERS,
    )
  }
}
