// Test infrastructure: a throwaway 3-master Redis Cluster on loopback ports (default 7101–7103),
// no replicas, no persistence, in a temp directory; stop() shuts every node down and removes it.

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cli, type RedisProcess, startRedis, waitFor } from './redis-server.test-helper.js'

const run = promisify(execFile)

export interface RedisClusterProcess {
  readonly nodes: { host: '127.0.0.1'; port: number }[]
  readonly dir: string
  /** Shut every node down and remove the directory; safe after a failed start. */
  stop(): Promise<void>
}

export async function startRedisCluster(ports: readonly number[] = [7101, 7102, 7103]): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-redis-cluster-'))
  const servers: RedisProcess[] = []
  const cluster: RedisClusterProcess = {
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    dir,
    async stop() {
      await Promise.allSettled(servers.map((server) => server.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    for (const port of ports) {
      // biome-ignore format: one flag and its value per line
      const args = [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '5000',
      ]
      servers.push(await startRedis(port, { dir, args }))
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
    )
    // Every node must agree that all slots are served before a client may trust its slot map.
    for (const port of ports) {
      await waitFor(`cluster_state:ok on node ${port}`, async () => {
        const info = (await cli(port, 'CLUSTER', 'INFO')) ?? ''
        return /cluster_state:ok/.test(info) && /cluster_known_nodes:(\d+)/.exec(info)?.[1] === String(ports.length)
      })
    }
  } catch (error) {
    await cluster.stop()
    throw error
  }
  return cluster
}
