// The one error every producer rejects with when the broker did not confirm a publish: catch
// `PublishNotConfirmedError` (or test `code === 'PUBLISH_NOT_CONFIRMED'`) whatever the broker.

import { ErrorCode, IdempotencyError } from '../errors.js'

export interface PublishNotConfirmedOptions {
  /** The id the message was published with: publish again with it. */
  messageId?: string | undefined
  cause?: unknown
}

/**
 * The broker did not confirm a publish (it refused it, returned it, the connection failed, or no
 * confirmation came in time). The message may or may not have arrived: publishing again with the
 * same id is safe, the consumer recognises a duplicate.
 *
 * @example
 * try {
 *   await producer.publish({ id, payload })
 * } catch (error) {
 *   if (error instanceof PublishNotConfirmedError) retryLater(error.messageId ?? id)
 *   else throw error
 * }
 */
export class PublishNotConfirmedError extends IdempotencyError {
  /** The id the message was published with, when the producer knows it. */
  readonly messageId: string | undefined

  constructor(message: string, options: PublishNotConfirmedOptions = {}) {
    super(ErrorCode.PUBLISH_NOT_CONFIRMED, message, options.cause === undefined ? {} : { cause: options.cause })
    this.name = 'PublishNotConfirmedError'
    this.messageId = options.messageId
  }
}
