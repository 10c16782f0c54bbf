// A private RabbitMQ for the chaos run: the rabbitmq-server installed on the machine, started as a
// node of its own (its name, ports, mnesia, logs, plugins and Erlang cookie in a temporary
// directory), beside the shared broker on 5672, which it never touches (epmd is shared, as it is
// meant to be).

import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Managed } from '../servers.js'

const SCRIPTS = '/usr/lib/rabbitmq/bin'

/** AMQP on 16170 (its proxy on 16171), Erlang distribution on 16172, rabbitmqctl's own node on 16173–16179. */
export const RABBITMQ_PORTS = { amqp: 16170, proxy: 16171, distribution: 16172, cliFirst: 16173, cliLast: 16179 }

/**
 * The user the installed RabbitMQ's files belong to, when the run is root: the packaged scripts
 * run the broker as `rabbitmq`, never as root.
 */
function rabbitmqUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', 'rabbitmq'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'rabbitmq'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

/**
 * A single RabbitMQ node with durable queues on its own mnesia directory: `restart` SIGKILLs the
 * Erlang VM and starts it again on the same data (quorum queues recover from their write-ahead
 * log, persistent messages and all).
 *
 * The server is started through the packaged script with RUNNING_UNDER_SYSTEMD set, which makes
 * the script `exec` the VM (erl, then erlexec, exec in turn) instead of running it as a child of a
 * shell that forwards signals: the pid the run holds is beam.smp's own, so a SIGKILL is the VM's
 * crash, not a wrapper's death leaving the VM behind. The VM's helper processes (erl_child_setup,
 * inet_gethost) exit when it dies. `restart` checks the VM's pid file besides, and kills what
 * would still run.
 */
export class PrivateRabbitMq extends Managed {
  readonly name = 'rabbitmq'
  /** The node name: its own, so that it never meets the shared `rabbit@localhost` in epmd. */
  readonly node = `chaos-${process.pid}@localhost`
  readonly #user = rabbitmqUser()

  constructor() {
    super(RABBITMQ_PORTS.amqp, 'rabbitmq')
    const config = [
      // Logs go to the file in the log directory, warnings and worse.
      'log.console = false',
      'log.file.level = warning',
      // A disk shared with other runs: no disk alarm (it blocks publishers) unless it is nearly full.
      'disk_free_limit.absolute = 50MB',
    ]
    this.#write('rabbitmq.conf', `${config.join('\n')}\n`)
    // No plugin at all: the management plugin would take the shared broker's port 15672.
    this.#write('enabled_plugins', '[].\n')
    // Read instead of /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
    this.#write('rabbitmq-env.conf', '')
    if (this.#user !== undefined) chownSync(this.dir, this.#user.uid, this.#user.gid)
  }

  #write(file: string, text: string): void {
    writeFileSync(join(this.dir, file), text)
    if (this.#user !== undefined) chownSync(join(this.dir, file), this.#user.uid, this.#user.gid)
  }

  /** What both the server and rabbitmqctl read: the node, its files, and HOME for the Erlang cookie. */
  #environment(): string[] {
    return [
      `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      'LANG=C.UTF-8',
      'LC_ALL=C.UTF-8',
      // The VM writes its Erlang cookie here on the first start; rabbitmqctl reads it from here.
      `HOME=${this.dir}`,
      `RABBITMQ_CONF_ENV_FILE=${join(this.dir, 'rabbitmq-env.conf')}`,
      `RABBITMQ_NODENAME=${this.node}`,
    ]
  }

  protected command() {
    const dir = this.dir
    const environment = [
      ...this.#environment(),
      'RABBITMQ_NODE_IP_ADDRESS=127.0.0.1',
      `RABBITMQ_NODE_PORT=${RABBITMQ_PORTS.amqp}`,
      `RABBITMQ_DIST_PORT=${RABBITMQ_PORTS.distribution}`,
      `RABBITMQ_MNESIA_BASE=${join(dir, 'mnesia')}`,
      `RABBITMQ_LOG_BASE=${join(dir, 'log')}`,
      `RABBITMQ_PID_FILE=${this.#pidFile()}`,
      `RABBITMQ_ENABLED_PLUGINS_FILE=${join(dir, 'enabled_plugins')}`,
      `RABBITMQ_CONFIG_FILE=${join(dir, 'rabbitmq.conf')}`,
      `RABBITMQ_CONFIG_FILES=${join(dir, 'conf.d')}`,
      `RABBITMQ_ADVANCED_CONFIG_FILE=${join(dir, 'advanced.config')}`,
      // The distribution port on loopback only, as the shared node's.
      'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}',
      // The script then execs the VM: see the class comment.
      'RUNNING_UNDER_SYSTEMD=true',
    ]
    // env -i: nothing of the run's environment (an ERL_FLAGS, a RABBITMQ_… of the shell) reaches the node.
    return { file: '/usr/bin/env', args: ['-i', ...environment, `${SCRIPTS}/rabbitmq-server`], ...this.#user }
  }

  #pidFile(): string {
    return join(this.dir, 'rabbitmq.pid')
  }

  override async start(): Promise<void> {
    if (!existsSync(`${SCRIPTS}/rabbitmq-server`)) throw new Error(`RabbitMQ is not installed (${SCRIPTS})`)
    await super.start()
  }

  override async restart(): Promise<void> {
    const vm = this.#vmPid()
    await this.stop('SIGKILL')
    // The child was the VM itself (exec); should a packaged script ever fork it instead, kill the
    // VM by its pid, so that no broker outlives its crash and holds the ports and the data.
    if (vm !== undefined && this.#isOurVm(vm)) {
      process.kill(vm, 'SIGKILL')
      while (this.#isOurVm(vm)) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await this.start()
  }

  #vmPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.#pidFile(), 'utf8').trim())
      return Number.isInteger(pid) && pid > 0 ? pid : undefined
    } catch {
      return undefined
    }
  }

  /** Whether `pid` is still this node's VM (a pid file outlives its process, and pids are reused). */
  #isOurVm(pid: number): boolean {
    try {
      // erl passes `-home $HOME`: this server's directory.
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      return commandLine.some((arg) => arg.endsWith('beam.smp')) && commandLine.includes(this.dir)
    } catch {
      return false
    }
  }

  /**
   * Messages of `queue` (a quorum queue) delivered to a consumer and not yet acknowledged, exactly:
   * AMQP tells only the ready ones (queue.declare), and rabbitmqctl's list_queues reads metrics
   * refreshed every few seconds, so this asks the queue's Raft state machine itself, through
   * rabbitmqctl eval. It starts an Erlang VM (about a second of CPU): ask it sparingly.
   */
  async unacknowledged(queue: string): Promise<number> {
    if (!/^[\w.:-]+$/.test(queue)) throw new Error(`unexpected queue name ${queue}`)
    const expression = [
      `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"${queue}">>)),`,
      '{ok, {_, N}, _} = ra:local_query(amqqueue:get_pid(Q), fun rabbit_fifo:query_messages_checked_out/1),',
      'N.',
    ].join(' ')
    const stdout = await this.rabbitmqctl('eval', expression)
    const count = Number(stdout.trim())
    if (!Number.isInteger(count)) throw new Error(`rabbitmqctl eval answered ${stdout.trim()}`)
    return count
  }

  /** rabbitmqctl on this node (`-q`): its output. */
  async rabbitmqctl(...args: string[]): Promise<string> {
    const environment = [
      ...this.#environment(),
      // rabbitmqctl is a distributed Erlang node too: its listening port within this server's range.
      `RABBITMQ_CTL_DIST_PORT_MIN=${RABBITMQ_PORTS.cliFirst}`,
      `RABBITMQ_CTL_DIST_PORT_MAX=${RABBITMQ_PORTS.cliLast}`,
    ]
    const { stdout } = await promisify(execFile)(
      '/usr/bin/env',
      ['-i', ...environment, `${SCRIPTS}/rabbitmqctl`, '-n', this.node, '-q', ...args],
      { cwd: this.dir, timeout: 15_000, ...this.#user },
    )
    return stdout
  }
}
