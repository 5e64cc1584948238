import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ERROR_CODES, isErrorCode } from '@m2msec/errors'
import { ErrorReason, errorReasonFromJSON, errorReasonToJSON } from '@m2msec/proto/common/v1'

/** Enum member names as generated (numeric TS enums also map number -> name: skip those). */
const reasonNames = Object.keys(ErrorReason).filter((k) => Number.isNaN(Number(k)))
const wireReasons = reasonNames.filter((k) => k !== 'ERROR_REASON_UNSPECIFIED' && k !== 'UNRECOGNIZED')

test('ErrorReason lists exactly the codes of @m2msec/errors ERROR_CODES', () => {
  assert.deepEqual([...wireReasons].sort(), Object.keys(ERROR_CODES).sort())
})

test('ErrorReason keeps the ERROR_CODES order (grouped by gRPC status)', () => {
  assert.deepEqual(wireReasons, Object.keys(ERROR_CODES))
})

test('ErrorReason numbers are unique and the zero value is UNSPECIFIED', () => {
  const numbers = wireReasons.map((name) => ErrorReason[name as keyof typeof ErrorReason])
  assert.equal(new Set(numbers).size, numbers.length)
  assert.ok(numbers.every((n) => n > 0))
  assert.equal(ErrorReason.ERROR_REASON_UNSPECIFIED, 0)
})

test('a wire reason string maps to its enum value and back', () => {
  for (const code of Object.keys(ERROR_CODES)) {
    const value = errorReasonFromJSON(code)
    assert.notEqual(value, ErrorReason.UNRECOGNIZED, code)
    assert.equal(errorReasonToJSON(value), code)
    assert.ok(isErrorCode(errorReasonToJSON(value)))
  }
  assert.equal(errorReasonFromJSON('ERR_NO_SUCH_REASON'), ErrorReason.UNRECOGNIZED)
})
