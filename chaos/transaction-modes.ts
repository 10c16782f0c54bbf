// The store modes that run Idem's transaction mode: the charge commits in the store's own
// database, in the transaction that also writes the record, so a double there is Idem's failure.

export const TRANSACTION_MODES = ['transaction-postgres', 'transaction-mysql', 'transaction-sqlite'] as const

export type TransactionMode = (typeof TRANSACTION_MODES)[number]

/** Whether `store` (a store mode, or a table's store label) is one of the transaction modes. */
export function inTransactionMode(store: string): store is TransactionMode {
  return (TRANSACTION_MODES as readonly string[]).includes(store)
}
