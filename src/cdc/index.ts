// idem/cdc: change data capture from a MariaDB (or MySQL) row-based binlog, each source
// transaction applied to a target SQL database exactly once, with the checkpoint in the same
// transaction. Runs on @vlasky/zongji and mysql2 (optional peer dependencies, loaded on start).

export { TransactionAssembler, tableFilter } from './assembler.js'
export { CheckpointTable, cdcCheckpointSchema, DEFAULT_CHECKPOINT_TABLE } from './checkpoint.js'
export { consumeBinlog } from './consume-binlog.js'
export { CdcError, type CdcErrorCode } from './errors.js'
export type {
  ApplyContext,
  BinlogConsumer,
  BinlogPosition,
  BinlogSource,
  ChangeKind,
  ConsumeBinlogOptions,
  ConsumerStats,
  Row,
  RowChange,
  SourceTransaction,
} from './types.js'
