// The error of an acknowledgement that came too late for its delivery.

import { ErrorCode, IdempotencyError } from '../errors.js'

/**
 * A delivery's channel or connection closed before it was settled: the broker has taken the
 * message back and redelivers it, so an ack or reject on the old delivery is void (code
 * `STALE_DELIVERY`). The core reports it as a `broker_error`; the redelivery is recognised by its key.
 */
export class StaleDeliveryError extends IdempotencyError {
  constructor(key: string, operation: string, why = 'its channel closed since the delivery; the broker redelivers it') {
    super(ErrorCode.STALE_DELIVERY, `cannot ${operation} "${key}": ${why}`)
    this.name = 'StaleDeliveryError'
  }
}

/**
 * The broker took a delivery back before its handler started (a Kafka partition rewound to an
 * earlier failed offset, or revoked): the core hands it back without running the handler, and it
 * does not count as an attempt (code `STALE_DELIVERY`).
 */
export class DeliveryWithdrawnError extends IdempotencyError {
  constructor(key: string) {
    super(ErrorCode.STALE_DELIVERY, `"${key}" was withdrawn by the broker before its handler started; it comes again`)
    this.name = 'DeliveryWithdrawnError'
  }
}
