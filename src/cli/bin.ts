#!/usr/bin/env node
// The `idem` executable (package.json "bin"): main() with the process's arguments and exit codes.

import { main, USAGE, UsageError } from './main.js'

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`)
      process.exit(2)
    }
    console.error((error as Error)?.message ?? error)
    process.exit(1)
  },
)
