// Koa 2, installed as `koa2` for the tests, has no types of its own: its API is the one
// @types/koa describes for Koa 3, as far as the tests use it.

declare module 'koa2' {
  import Koa from 'koa'
  export default Koa
}
