import { expect, it, vi } from 'vitest'
import { warnDeprecated } from './deprecation.js'

it('warns once per old name, with the IDEM_DEPRECATED code and the replacement', () => {
  const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
  try {
    warnDeprecated('old-a', 'new-a')
    warnDeprecated('old-a', 'new-a')
    warnDeprecated('old-b', 'new-b')
    expect(warn.mock.calls).toEqual([
      ['old-a is deprecated: use new-a instead', { type: 'DeprecationWarning', code: 'IDEM_DEPRECATED' }],
      ['old-b is deprecated: use new-b instead', { type: 'DeprecationWarning', code: 'IDEM_DEPRECATED' }],
    ])
  } finally {
    warn.mockRestore()
  }
})
