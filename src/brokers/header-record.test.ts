import { describe, expect, it } from 'vitest'
import { headerRecord, headerValueText, lazyHeaders } from './header-record.js'

describe('headerValueText', () => {
  it('turns what broker clients decode into text, and leaves out what is absent', () => {
    expect(headerValueText('v')).toBe('v')
    expect(headerValueText(Buffer.from('héllo'))).toBe('héllo')
    expect(headerValueText(new TextEncoder().encode('bytes'))).toBe('bytes')
    expect(headerValueText(3)).toBe('3')
    expect(headerValueText(false)).toBe('false')
    expect(headerValueText(10n)).toBe('10')
    expect(headerValueText(['a', Buffer.from('b'), null, 1])).toBe('a, b, 1')
    expect(headerValueText(new Date('2024-01-02T03:04:05.000Z'))).toBe('2024-01-02T03:04:05.000Z')
    // amqplib's typed values and nested tables.
    expect(headerValueText({ '!': 'timestamp', value: 1700000000 })).toBe('1700000000')
    expect(headerValueText({ '!': 'decimal', value: { places: 2, digits: 1234 } })).toBe('12.34')
    expect(headerValueText({ queue: 'orders', count: 2 })).toBe('{"queue":"orders","count":2}')
    expect(headerValueText(undefined)).toBeUndefined()
    expect(headerValueText(null)).toBeUndefined()
    expect(headerValueText([])).toBeUndefined()
  })
})

describe('headerRecord', () => {
  it('keeps names as given, joins a repeated name, skips absent values, and is frozen', () => {
    const record = headerRecord([
      ['Traceparent', 'x'],
      ['traceparent', 'y'],
      ['tag', 'a'],
      ['tag', 'b'],
      ['gone', null],
      [Buffer.from('bin'), Buffer.from('v')],
    ])
    expect(record).toEqual({ Traceparent: 'x', traceparent: 'y', tag: 'a, b', bin: 'v' })
    expect(Object.isFrozen(record)).toBe(true)
  })

  it('takes a header named __proto__ as a header, without touching the prototype', () => {
    const record = headerRecord([['__proto__', 'v']])
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype)
    expect(Object.keys(record)).toEqual(['__proto__'])
    expect(Object.getOwnPropertyDescriptor(record, '__proto__')?.value).toBe('v')
  })
})

describe('lazyHeaders', () => {
  it('builds the record on the first call only, and returns the same record after', () => {
    let built = 0
    const headers = lazyHeaders(() => {
      built++
      return [['traceparent', 'x']]
    })
    expect(built).toBe(0)
    const first = headers()
    expect(headers()).toBe(first)
    expect(built).toBe(1)
    expect(first).toEqual({ traceparent: 'x' })
  })
})
