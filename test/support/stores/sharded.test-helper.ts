// Harnesses for the ShardedStore suites: shards on real servers, each isolated and removed after.
// PostgreSQL: one schema per shard (a fresh set per test). MariaDB: two databases made for the
// file, a fresh table in each per test, and both databases dropped at the end.

import mysql from 'mysql2/promise'
import type pg from 'pg'
import { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'
import { ShardedStore } from '../../../src/stores/sharded/sharded-store.js'
import { isolatedName } from '../../services.js'
import { dropSchema as dropMysqlTable, MYSQL_URL } from './mysql/mysql.test-helper.js'
import { isolatedStore } from './postgres/postgres.test-helper.js'

export interface ShardedHarness {
  store: ShardedStore
  cleanup(): Promise<void>
}

/** A ShardedStore over `count` PostgresStores, each in a schema of its own on `pool`. */
export async function shardedOverPostgresSchemas(pool: pg.Pool, count = 3): Promise<ShardedHarness> {
  const shards = await Promise.all(Array.from({ length: count }, () => isolatedStore(pool)))
  const store = new ShardedStore({
    shards: shards.map((shard, i) => ({ name: `pg-${i}`, store: shard.store })),
    ownsShards: true,
  })
  return {
    store,
    cleanup: async () => {
      await store.close()
      await Promise.all(shards.map((shard) => shard.drop()))
    },
  }
}

/** Databases made on the local MariaDB, with a pool on each; `drop()` ends the pools and drops them. */
export async function mariadbDatabases(count = 2): Promise<{ pools: mysql.Pool[]; drop: () => Promise<void> }> {
  const admin = await mysql.createConnection({ uri: MYSQL_URL })
  const names = Array.from({ length: count }, () => isolatedName('idem_shard'))
  try {
    for (const name of names) await admin.query(`CREATE DATABASE \`${name}\``)
  } finally {
    await admin.end()
  }
  const base = new URL(MYSQL_URL)
  const pools = names.map((name) => {
    const url = new URL(base)
    url.pathname = `/${name}`
    return mysql.createPool({ uri: url.toString(), connectionLimit: 10 })
  })
  return {
    pools,
    drop: async () => {
      await Promise.all(pools.map((pool) => pool.end()))
      const conn = await mysql.createConnection({ uri: MYSQL_URL })
      try {
        for (const name of names) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
      } finally {
        await conn.end()
      }
    },
  }
}

/** A ShardedStore over one MysqlStore per pool, each on a fresh table in its database. */
export async function shardedOverMariadb(pools: readonly mysql.Pool[]): Promise<ShardedHarness> {
  const table = isolatedName('idem')
  const shards = pools.map((pool, i) => ({ name: `db-${i}`, store: new MysqlStore({ client: pool, table }) }))
  await Promise.all(shards.map((shard) => shard.store.ensureSchema()))
  const store = new ShardedStore({ shards, ownsShards: true })
  return {
    store,
    cleanup: async () => {
      await store.close()
      await Promise.all(pools.map((pool) => dropMysqlTable(pool, table)))
    },
  }
}
