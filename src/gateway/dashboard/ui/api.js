// The admin API as the page calls it: every request carries `Authorization: Bearer <token>`, the
// token the operator typed, kept in this tab's sessionStorage only (never in a cookie, never in
// the page's HTML or URL). A 401 forgets it and throws Unauthorized: the page goes back to the form.

const TOKEN_KEY = 'idem-admin-token'

export class Unauthorized extends Error {
  constructor() {
    super('The gateway refused the admin token (401)')
  }
}

/** @returns {string | null} */
export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY)
}

/** @param {string} token */
export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token)
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY)
}

/**
 * @param {'GET' | 'PUT' | 'DELETE' | 'POST'} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<{ status: number, data: any }>}
 */
export async function api(method, path, body) {
  const token = storedToken()
  if (token === null) throw new Unauthorized()
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  })
  if (response.status === 401) {
    forgetToken()
    throw new Unauthorized()
  }
  const text = await response.text()
  let data
  try {
    data = JSON.parse(text)
  } catch {
    data = text
  }
  return { status: response.status, data }
}

/** The admin API's error message from a JSON body `{ "error": "…" }`, else a generic one. */
export function errorOf(/** @type {{ status: number, data: any }} */ answer) {
  const message = answer.data && typeof answer.data === 'object' ? answer.data.error : undefined
  return typeof message === 'string' ? message : `HTTP ${answer.status}`
}
