// Producers: the contract every broker's producer keeps, and stable message ids.
export { newMessageId } from './message-id.js'
export type { OutgoingMessage, Producer } from './types.js'
