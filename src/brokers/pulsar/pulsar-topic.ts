// Topic names and WebSocket endpoints. A topic is given as Pulsar writes it ('persistent://tenant/
// namespace/topic'), or short ('tenant/namespace/topic', or 'topic' in public/default). Only
// persistent topics: a non-persistent topic drops what no consumer is connected to receive, which
// no acknowledgement can make up for.

/** A persistent topic, parsed. */
export interface TopicName {
  readonly tenant: string
  readonly namespace: string
  readonly local: string
  /** `persistent://tenant/namespace/topic`. */
  readonly full: string
}

const SEGMENT = /^[^/\s]+$/

/** Parse `topic` (`what` names the option in errors). */
export function parseTopic(topic: unknown, what = 'topic'): TopicName {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`${what} must be a topic name such as 'persistent://public/default/orders', got ${show(topic)}`)
  }
  let rest = topic
  if (rest.startsWith('non-persistent://')) {
    throw new TypeError(
      `${what} "${topic}" is non-persistent: Pulsar drops its messages when no consumer is connected; use a persistent topic`,
    )
  }
  if (rest.startsWith('persistent://')) rest = rest.slice('persistent://'.length)
  else if (rest.includes('://')) throw new TypeError(`${what} "${topic}" is not a Pulsar topic name`)
  const parts = rest.split('/')
  const [tenant, namespace, local] = parts.length === 1 ? ['public', 'default', parts[0]] : parts
  if (
    (parts.length !== 1 && parts.length !== 3) ||
    tenant === undefined ||
    namespace === undefined ||
    local === undefined ||
    ![tenant, namespace, local].every((part) => SEGMENT.test(part))
  ) {
    throw new TypeError(
      `${what} "${topic}" must be 'persistent://tenant/namespace/topic', 'tenant/namespace/topic' or 'topic'`,
    )
  }
  return { tenant, namespace, local, full: `persistent://${tenant}/${namespace}/${local}` }
}

/** The web service's address, checked: `ws://host:port` or `wss://…`, no trailing slash. */
export function parseServiceUrl(url: unknown, where: string): string {
  if (typeof url !== 'string' || !/^wss?:\/\/[^/]+/.test(url)) {
    throw new TypeError(
      `${where} needs url: the Pulsar web service's WebSocket address, such as 'ws://127.0.0.1:8080', got ${show(url)}`,
    )
  }
  return url.replace(/\/+$/, '')
}

/** The consumer endpoint of `topic` and `subscription`, with `query`. */
export function consumerUrl(
  base: string,
  topic: TopicName,
  subscription: string,
  query: Record<string, string>,
): string {
  return `${base}/ws/v2/consumer/persistent/${path(topic)}/${encodeURIComponent(subscription)}${queryString(query)}`
}

/** The producer endpoint of `topic`, with `query`. */
export function producerUrl(base: string, topic: TopicName, query: Record<string, string> = {}): string {
  return `${base}/ws/v2/producer/persistent/${path(topic)}${queryString(query)}`
}

function path(topic: TopicName): string {
  return [topic.tenant, topic.namespace, topic.local].map(encodeURIComponent).join('/')
}

function queryString(query: Record<string, string>): string {
  const search = new URLSearchParams(query).toString()
  return search.length === 0 ? '' : `?${search}`
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}
