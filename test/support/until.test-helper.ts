// Waiting in tests for something another process or a broker does: poll until it holds.

import { setTimeout as sleep } from 'node:timers/promises'

/** Poll `check` until it is true; fail naming `what` after `timeoutMs`. */
export async function until(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    }
    await sleep(25)
  }
}
