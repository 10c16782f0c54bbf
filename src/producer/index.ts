// Producers: the contract every broker's producer keeps, its error, and stable message ids.
export { newMessageId } from './message-id.js'
export { PublishNotConfirmedError, type PublishNotConfirmedOptions } from './publish-error.js'
export type { OutgoingMessage, Producer } from './types.js'
