// Whether a schema has the functions added after the first three (settle, resettle, complete): a
// schema created before them keeps working through the statements they replace, until
// ensureSchema() or a migration with the current postgresSchema() text adds them.

/** Asked once per store, through whichever connection needs to know first. */
export class FunctionPresence {
  #known: Promise<boolean> | undefined
  readonly #query: string

  /** `query` answers one row whose `present` column is true when every function exists. */
  constructor(query: string) {
    this.#query = query
  }

  /** The schema was just created or updated with every function (ensureSchema): no need to ask. */
  markPresent(): void {
    this.#known = Promise.resolve(true)
  }

  check(run: (text: string) => Promise<readonly Record<string, unknown>[]>): Promise<boolean> {
    this.#known ??= run(this.#query).then(
      (rows) => rows[0]?.present === true,
      (error: unknown) => {
        // Asked again next time: a failed check says nothing about the schema.
        this.#known = undefined
        throw error
      },
    )
    return this.#known
  }
}
