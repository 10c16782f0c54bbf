// Acknowledgements gathered into one XACK: the core settles each delivery on its own, often many in
// the same turn of the event loop (a batch whose records completed together). XACK takes any number
// of ids, so the ids asked for in one turn go in one XACK: one command instead of dozens, and still
// no ack before the core asked for it. Each caller learns the fate of the XACK carrying its id,
// through that XACK's one promise: no promise or closure per id.

/** The ids of one XACK, and what its callers wait on. */
class AckGroup {
  readonly ids: string[] = []
  readonly promise: Promise<void>
  resolve!: () => void
  reject!: (error: unknown) => void

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }
}

export class AckBatcher {
  readonly #send: (ids: readonly string[]) => Promise<unknown>
  readonly #max: number
  /** Called with every id of an XACK once it ended, whether it succeeded or failed. */
  readonly #ended: ((ids: readonly string[]) => void) | undefined
  #groups: AckGroup[] = []

  /** `send` runs one XACK for the ids; at most `max` ids go in one; `ended` hears of each XACK's ids when it ended. */
  constructor(send: (ids: readonly string[]) => Promise<unknown>, max = 512, ended?: (ids: readonly string[]) => void) {
    this.#send = send
    this.#max = max
    this.#ended = ended
  }

  ack(id: string): Promise<void> {
    let group = this.#groups.at(-1)
    if (group === undefined) {
      // After the current tick's other settlements have queued their ids too.
      setImmediate(() => this.#flush())
    }
    if (group === undefined || group.ids.length >= this.#max) {
      group = new AckGroup()
      this.#groups.push(group)
    }
    group.ids.push(id)
    return group.promise
  }

  #flush(): void {
    const groups = this.#groups
    this.#groups = []
    for (const group of groups) {
      this.#send(group.ids).then(
        () => {
          this.#ended?.(group.ids)
          group.resolve()
        },
        (error: unknown) => {
          this.#ended?.(group.ids)
          group.reject(error)
        },
      )
    }
  }
}
