import { expect, it } from 'vitest'
import { newMessageId } from './message-id.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

it('generates RFC 9562 version 7 ids that carry the creation time', () => {
  const id = newMessageId(1_700_000_000_123)
  expect(id).toMatch(UUID_V7)
  expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(1_700_000_000_123)
})

it('generates strictly increasing ids within one millisecond and across a clock step back', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => newMessageId(1_800_000_000_000 - (i % 3)))
  for (let i = 1; i < ids.length; i++) expect((ids[i] as string) > (ids[i - 1] as string)).toBe(true)
  expect(new Set(ids).size).toBe(ids.length)
  for (const id of ids) expect(id).toMatch(UUID_V7)
})
