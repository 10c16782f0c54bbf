import { describe, expect, it } from 'vitest'
import { decodeJson } from './decode-json.js'

describe('decodeJson', () => {
  it('parses UTF-8 JSON from a Buffer, a Uint8Array or a string', () => {
    expect(decodeJson(Buffer.from('{"a":"é"}'))).toEqual({ a: 'é' })
    expect(decodeJson(new TextEncoder().encode('[1,2]'))).toEqual([1, 2])
    expect(decodeJson('{"n":1}')).toEqual({ n: 1 })
  })

  it('refuses bytes that are not valid UTF-8 instead of replacing them', () => {
    // '{"a":"' + 0xff + '"}': a lenient decoder would hand the handler "\uFFFD".
    const invalid = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff]), Buffer.from('"}')])
    expect(() => decodeJson(invalid)).toThrow(new SyntaxError('the payload is not valid UTF-8'))
    // A truncated multi-byte sequence too.
    expect(() => decodeJson(Buffer.from([0x22, 0xc3, 0x22]))).toThrow(SyntaxError)
  })

  it('skips a byte order mark, in bytes and in a string', () => {
    expect(decodeJson(Buffer.from('\uFEFF{"a":1}'))).toEqual({ a: 1 })
    expect(decodeJson('\uFEFF{"a":1}')).toEqual({ a: 1 })
  })

  it('throws a SyntaxError for text that is not JSON', () => {
    expect(() => decodeJson(Buffer.from('not json'))).toThrow(SyntaxError)
    expect(() => decodeJson('')).toThrow(SyntaxError)
  })
})
