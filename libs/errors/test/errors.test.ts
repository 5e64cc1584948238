import { test } from 'node:test'
import assert from 'node:assert/strict'
import { M2msecError, isM2msecError, isErrorCode, ERROR_CODES } from '../src/index.ts'

test('M2msecError carries code, status and details', () => {
  const err = new M2msecError('ERR_KEY_NOT_FOUND', 'key not found', { keyId: 'k1' })
  assert.equal(err.code, 'ERR_KEY_NOT_FOUND')
  assert.equal(err.status, 'NOT_FOUND')
  assert.deepEqual(err.details, { keyId: 'k1' })
  assert.ok(isM2msecError(err))
})

test('isM2msecError recognises a structurally equal error from another copy', () => {
  const foreign = Object.assign(new Error('x'), { name: 'M2msecError', code: 'ERR_REPLAY' })
  assert.ok(isM2msecError(foreign))
  assert.ok(!isM2msecError(Object.assign(new Error('x'), { name: 'M2msecError', code: 'ERR_NOPE' })))
  assert.ok(!isM2msecError(new Error('plain')))
})

test('every code maps to a gRPC status name', () => {
  const statuses = new Set([
    'INVALID_ARGUMENT',
    'UNAUTHENTICATED',
    'PERMISSION_DENIED',
    'NOT_FOUND',
    'ALREADY_EXISTS',
    'FAILED_PRECONDITION',
    'ABORTED',
    'RESOURCE_EXHAUSTED',
    'UNAVAILABLE',
    'INTERNAL',
  ])
  for (const [code, status] of Object.entries(ERROR_CODES)) {
    assert.ok(statuses.has(status), `${code} -> ${status}`)
    assert.ok(isErrorCode(code))
  }
  assert.ok(!isErrorCode('toString'))
})
