// Connecting the consumer's client: check that it asks for a persistent MQTT 5 session, connect
// it only once the ack hook is in place (so no session message is acknowledged unhandled), then
// subscribe. The subscription is part of the session: it outlives this process.

import type { MqttConsumerClient, MqttSubscribeOptions } from './mqtt-client.js'

export function checkSessionOptions(client: MqttConsumerClient): void {
  const { options } = client
  const problems: string[] = []
  if (options.protocolVersion !== 5) problems.push('protocolVersion must be 5')
  if (options.clean !== false) problems.push('clean must be false (a clean start discards unacknowledged messages)')
  if (!((options.properties?.sessionExpiryInterval ?? 0) > 0)) {
    problems.push('properties.sessionExpiryInterval must be > 0 (otherwise the session ends with the connection)')
  }
  if (client.stream !== undefined) {
    problems.push(
      'the client must not be connected yet (manualConnect: true): a connected client may already have ' +
        'acknowledged session messages nobody handled',
    )
  }
  if (problems.length > 0) {
    throw new TypeError(`consumeMqtt: ${problems.join('; ')}. Create the client with mqttSessionOptions({ clientId }).`)
  }
}

export async function connectSession(
  client: MqttConsumerClient,
  filters: readonly string[],
  subscribe: MqttSubscribeOptions,
  timeoutMs: number,
): Promise<void> {
  checkSessionOptions(client)
  await new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer)
      client.removeListener('connect', onConnect)
      client.removeListener('error', onError)
    }
    const onConnect = () => {
      cleanup()
      resolve()
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    const timer = setTimeout(
      () => onError(new Error(`MQTT connection not established within ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.on('connect', onConnect)
    client.on('error', onError)
    client.connect()
  })
  const granted = (await client.subscribeAsync([...filters], subscribe)) ?? []
  const refused = granted.filter((grant) => grant.qos >= 0x80 || grant.qos < subscribe.qos)
  if (refused.length > 0) {
    const list = refused.map((grant) => `${grant.topic} (granted ${grant.qos})`).join(', ')
    throw new Error(`the broker did not grant QoS ${subscribe.qos} on ${list}`)
  }
}
