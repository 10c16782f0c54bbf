// Writing a record's stored result directly, through the store contract, as someone with write
// access to the store could: to alter a ciphertext, or copy a result to another record.

import type { IdempotencyStore } from '../../../src/contract/types.js'

const LONG = 60_000

/** Replace record `id` with a completed one holding `result` under `fingerprint`, on any store. */
export async function writeResult(
  store: IdempotencyStore,
  id: string,
  fingerprint: string,
  result: string,
): Promise<void> {
  await store.delete(id)
  const begun = await store.begin(id, fingerprint, LONG, LONG)
  if (begun.outcome !== 'acquired') throw new Error(`could not claim ${id} to rewrite it: ${begun.outcome}`)
  await store.complete(id, begun.token, result, LONG)
}

/** The completed record `id`'s stored result and fingerprint; throws when there is none. */
export async function readResult(
  store: IdempotencyStore,
  id: string,
): Promise<{ result: string; fingerprint: string }> {
  const record = await store.get(id)
  if (record === null || record.state !== 'completed' || record.result === null) {
    throw new Error(`${id} holds no completed result`)
  }
  return { result: record.result, fingerprint: record.fingerprint }
}

/** `stored` with one character of its base64 body changed (near the end: in the ciphertext or its tag). */
export function flipCharacter(stored: string, fromEnd = 10): string {
  const at = stored.length - fromEnd
  const replacement = stored[at] === 'A' ? 'B' : 'A'
  return stored.slice(0, at) + replacement + stored.slice(at + 1)
}
