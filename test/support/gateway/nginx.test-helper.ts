// Test infrastructure: Debian's nginx as a plain reverse proxy (`proxy_pass` to one upstream over a
// keep-alive pool), the reference the gateway is compared with. Each call writes a minimal
// nginx.conf into a temp directory of its own (pid file, error log and temp paths all inside it),
// runs `/usr/sbin/nginx -c <conf> -p <dir>` in the foreground (`daemon off`) as a child of this
// process, waits until the port answers and stops it by its pid (SIGQUIT, a graceful shutdown;
// SIGKILL after 3 s). No test framework here: bench code uses it too.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { reachable } from '../../reachable.js'
import { freePort } from '../free-port.test-helper.js'

export const NGINX = process.env.IDEM_NGINX ?? '/usr/sbin/nginx'

export interface StartNginxOptions {
  /** Where to proxy to: http://host:port (a path is ignored; the request's own path is passed on). */
  upstreamUrl: string
  /** Port on 127.0.0.1; default a free one. */
  port?: number
  /** `worker_processes`: a number or 'auto'; default 1. */
  workers?: number | 'auto'
}

export interface NginxServer {
  /** http://127.0.0.1:<port> */
  readonly url: string
  /** The master process's pid. */
  readonly pid: number
  /** The temp directory holding nginx.conf, the pid file, the error log and the temp paths. */
  readonly dir: string
  /** Stop it by pid and remove its directory; safe to call twice. */
  stop(): Promise<void>
}

/** Undefined when `nginx -v` runs, else why not (with the command that installs it). */
export function missingNginx(): Promise<string | undefined> {
  if (!existsSync(NGINX)) return Promise.resolve(`${NGINX} not found: install it with \`apt-get install nginx\``)
  return new Promise((resolve) => {
    execFile(NGINX, ['-v'], { timeout: 10_000 }, (error) =>
      resolve(
        error === null
          ? undefined
          : `${NGINX} -v failed (${error.message.split('\n')[0]}); install it with \`apt-get install nginx\``,
      ),
    )
  })
}

const started = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL')
})

export function nginxConf(options: { dir: string; port: number; upstream: string; workers: number | 'auto' }): string {
  const { dir, port, upstream, workers } = options
  const temp = (name: string) => join(dir, 'temp', name)
  // As root, the workers would run as `nobody` and could not use the temp directory; as anyone
  // else nginx ignores `user` (and says so), so the workers are the caller either way.
  const user = process.getuid?.() === 0 ? 'user root;' : ''
  return `# written by test/support/gateway/nginx.test-helper.ts
${user}
daemon off;
master_process on;
worker_processes ${workers};
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;

events {
  worker_connections 1024;
}

http {
  access_log off;
  client_body_temp_path ${temp('client_body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};

  keepalive_timeout 65s;
  keepalive_requests 100000;

  upstream backend {
    server ${upstream};
    keepalive 64;
    keepalive_requests 100000;
  }

  server {
    listen 127.0.0.1:${port};

    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`
}

export async function startNginx(options: StartNginxOptions): Promise<NginxServer> {
  const missing = await missingNginx()
  if (missing !== undefined) throw new Error(missing)
  const upstream = new URL(options.upstreamUrl)
  if (upstream.protocol !== 'http:') throw new Error(`upstreamUrl must be http://, got ${options.upstreamUrl}`)
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'idem-nginx-'))
  mkdirSync(join(dir, 'temp'))
  const conf = join(dir, 'nginx.conf')
  const errorLog = join(dir, 'error.log')
  writeFileSync(conf, nginxConf({ dir, port, upstream: upstream.host, workers: options.workers ?? 1 }))

  // -e: the error log used before the configuration is read (else /var/log/nginx/error.log).
  const child = spawn(NGINX, ['-c', conf, '-p', `${dir}/`, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'] })
  started.add(child)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  let failure: Error | undefined
  child.once('error', (error) => {
    failure = error
  })
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      started.delete(child)
      failure ??= new Error(`nginx exited (${signal ?? code}):\n${stderr}${tail(errorLog)}`)
      resolve()
    })
  })

  let stopped = false
  const server: NginxServer = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    dir,
    async stop() {
      if (stopped) return
      stopped = true
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const pid = child.pid
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {}
        const timer = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {}
        }, 3000)
        await exited
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }

  const deadline = Date.now() + 10_000
  // The pid file is written once the listening socket is bound: nobody else's server on the port.
  while (!existsSync(join(dir, 'nginx.pid')) || !(await reachable(port))) {
    if (failure !== undefined || Date.now() > deadline) {
      const error = failure ?? new Error(`nginx did not answer on port ${port} within 10 s${tail(errorLog)}`)
      await server.stop()
      throw error
    }
    await sleep(25)
  }
  return server
}

function tail(file: string): string {
  if (!existsSync(file)) return ''
  return `\n${readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n')}`
}
