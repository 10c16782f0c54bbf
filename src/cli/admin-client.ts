// The CLI's side of the admin API: one call to every gateway replica given (`--admin` repeated,
// or IDEM_ADMIN_URL with commas), each answer kept apart so one replica down is reported, not hidden.

export interface AdminTarget {
  url: string
  token: string
}

export interface AdminAnswer {
  url: string
  status: number
  body: unknown
}

export class AdminCallError extends Error {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(`${url}: ${message}`)
    this.name = 'AdminCallError'
  }
}

export async function callAdmin(
  target: AdminTarget,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<AdminAnswer> {
  const url = new URL(path, target.url.endsWith('/') ? target.url : `${target.url}/`).toString()
  let response: Response
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${target.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code
    throw new AdminCallError(target.url, `the admin API did not answer (${cause ?? (error as Error).message})`)
  }
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // plain text (metrics)
  }
  return { url: target.url, status: response.status, body: parsed }
}
