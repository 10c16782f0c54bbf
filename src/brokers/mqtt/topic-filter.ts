// MQTT topic filter matching (MQTT 5 §4.7), so the consumer's ack hook takes only the messages of
// its own subscriptions and leaves any other topic on the client to the previous hook.

const SHARED = /^\$share\/[^/#+]+\//

/** The filter a broker matches topics against: `$share/<group>/a/b` matches as `a/b`. */
export function matchedFilter(filter: string): string {
  return filter.replace(SHARED, '')
}

/** True when `topic` (a concrete topic name) matches `filter` (which may hold `+`, `#` and a `$share/` prefix). */
export function topicMatches(filter: string, topic: string): boolean {
  const pattern = matchedFilter(filter).split('/')
  const levels = topic.split('/')
  // Wildcards at the first level never match topics that start with '$' ($SYS and the like).
  if (topic.startsWith('$') && (pattern[0] === '+' || pattern[0] === '#')) return false
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i]
    // '#' also matches the parent level: 'a/#' matches 'a'.
    if (part === '#') return true
    if (i >= levels.length) return false
    if (part !== '+' && part !== levels[i]) return false
  }
  return pattern.length === levels.length
}

/** Reject filters a broker would refuse, before subscribing. */
export function validateFilter(filter: string): string {
  const levels = matchedFilter(filter).split('/')
  const bad = levels.some(
    (level, i) =>
      (level.includes('#') && (level !== '#' || i !== levels.length - 1)) || (level.includes('+') && level !== '+'),
  )
  if (filter.length === 0 || bad) throw new RangeError(`invalid MQTT topic filter ${JSON.stringify(filter)}`)
  return filter
}
