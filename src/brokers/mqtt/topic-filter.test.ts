import { describe, expect, it } from 'vitest'
import { topicMatches, validateFilter } from './topic-filter.js'

describe('topicMatches', () => {
  it.each([
    ['orders/created', 'orders/created', true],
    ['orders/created', 'orders/updated', false],
    ['orders/+', 'orders/created', true],
    ['orders/+', 'orders/eu/created', false],
    ['orders/#', 'orders', true],
    ['orders/#', 'orders/eu/created', true],
    ['#', 'anything/at/all', true],
    ['+/created', 'orders/created', true],
    ['#', '$SYS/broker/uptime', false],
    ['+/broker', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['$share/workers/orders/+', 'orders/created', true],
    ['$share/workers/orders/+', 'payments/created', false],
    ['orders/created', 'orders/created/late', false],
  ])('%s against %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected)
  })
})

it('rejects filters a broker would refuse', () => {
  for (const bad of ['', 'a/#/b', 'a/b#', 'a+/b']) expect(() => validateFilter(bad)).toThrow(RangeError)
  expect(validateFilter('$share/g/a/+/#')).toBe('$share/g/a/+/#')
})
