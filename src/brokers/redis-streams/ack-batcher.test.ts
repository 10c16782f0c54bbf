import { describe, expect, it } from 'vitest'
import { AckBatcher } from './ack-batcher.js'

describe('AckBatcher', () => {
  it('sends the ids asked for in one turn as one XACK, and later ones in the next', async () => {
    const sent: string[][] = []
    const acks = new AckBatcher(async (ids) => void sent.push([...ids]), 3)
    await Promise.all(['a', 'b', 'c', 'd'].map((id) => acks.ack(id)))
    await acks.ack('e')
    expect(sent).toEqual([['a', 'b', 'c'], ['d'], ['e']])
  })

  it('rejects every ack carried by a failed XACK, and only those', async () => {
    let calls = 0
    const acks = new AckBatcher(async () => {
      if (++calls === 1) throw new Error('connection lost')
    })
    const first = await Promise.allSettled([acks.ack('a'), acks.ack('b')])
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    await expect(acks.ack('c')).resolves.toBeUndefined()
  })
})
