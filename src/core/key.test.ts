import { describe, expect, it } from 'vitest'
import { InvalidKeyError } from '../errors.js'
import { recordId, validateKey } from './key.js'

describe('validateKey', () => {
  it('accepts printable ASCII from 1 to 255 characters', () => {
    expect(validateKey('a')).toBe('a')
    expect(validateKey('order-42:pay ~!')).toBe('order-42:pay ~!')
    expect(validateKey('k'.repeat(255))).toHaveLength(255)
  })

  it.each([
    ['an empty key', ''],
    ['a 256-character key', 'k'.repeat(256)],
    ['a non-ASCII key', 'commande-é'],
    ['a key with a newline', 'a\nb'],
    ['a key with a NUL', 'a\u0000b'],
    ['a key with DEL', 'a\u007fb'],
  ])('rejects %s with INVALID_KEY, never truncating', (_name, key) => {
    expect(() => validateKey(key)).toThrowError(InvalidKeyError)
    try {
      validateKey(key)
    } catch (error) {
      expect((error as InvalidKeyError).code).toBe('INVALID_KEY')
    }
  })

  it('rejects a key that is not a string', () => {
    expect(() => validateKey(42)).toThrowError(/must be a string, got number/)
    expect(() => validateKey(null)).toThrowError(/got null/)
  })

  it('names the offending character', () => {
    expect(() => validateKey('ab\u00e9')).toThrowError(/character 2 is U\+00E9/)
  })
})

describe('recordId', () => {
  it('never lets two (scope, key) pairs collide across the separator', () => {
    expect(recordId('a:b', 'c')).not.toBe(recordId('a', 'b:c'))
    expect(recordId('1:a', 'b')).not.toBe(recordId('1', 'a:b'))
  })

  it('is stable and readable', () => {
    expect(recordId('billing', 'order-42')).toBe('7:billing:order-42')
  })
})
