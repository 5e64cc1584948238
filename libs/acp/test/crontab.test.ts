import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { crontabMatches, parseCrontab } from '../src/index.ts'

const at = (iso: string): Date => new Date(iso)

describe('crontab: TS-0004 table 7.4.9.1-4 examples', () => {
  test('EXAMPLE 1 "* 0-5 2,6,10 * * * *" = 2:00-2:05, 6:00-6:05, 10:00-10:05 every day', () => {
    const c = parseCrontab('* 0-5 2,6,10 * * * *')
    assert.equal(crontabMatches(c, at('2025-06-01T02:00:00Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T02:05:59Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T02:06:00Z')), false)
    assert.equal(crontabMatches(c, at('2025-06-01T01:59:59Z')), false)
    assert.equal(crontabMatches(c, at('2025-06-01T06:03:00Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T10:05:00Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T14:00:00Z')), false)
  })
  test('EXAMPLE 2 "* * 8-20 * * * *": not between 20:00 (inclusive hour 20) and 8:00', () => {
    const c = parseCrontab('* * 8-20 * * * *')
    assert.equal(crontabMatches(c, at('2025-06-01T07:59:59Z')), false)
    assert.equal(crontabMatches(c, at('2025-06-01T08:00:00Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T20:59:59Z')), true)
    assert.equal(crontabMatches(c, at('2025-06-01T21:00:00Z')), false)
  })
  test('EXAMPLE 3 "0-23/2" in the hour field is 0,2,4,...,22', () => {
    const c = parseCrontab('* * 0-23/2 * * * *')
    for (let h = 0; h < 24; h++) {
      const iso = `2025-06-01T${String(h).padStart(2, '0')}:30:00Z`
      assert.equal(crontabMatches(c, at(iso)), h % 2 === 0, iso)
    }
  })
  test('EXAMPLE 4 "*/2" in day of week = Sundays, Tuesdays, Thursdays, Saturdays', () => {
    const c = parseCrontab('* * * * * */2 *')
    // 2025-06-01 is a Sunday.
    const expected = [true, false, true, false, true, false, true]
    expected.forEach((want, i) => {
      assert.equal(crontabMatches(c, at(`2025-06-0${i + 1}T12:00:00Z`)), want, `day ${i}`)
    })
  })
})

describe('crontab: fields and UTC', () => {
  test('"The time to be matched with the schedule pattern shall be interpreted in UTC"', () => {
    const c = parseCrontab('* * 2 * * * *')
    // 03:30 at UTC+01:00 is 02:30 UTC.
    assert.equal(crontabMatches(c, new Date('2025-01-01T03:30:00+01:00')), true)
    assert.equal(crontabMatches(c, new Date('2025-01-01T02:30:00+01:00')), false)
  })
  test('second, day of month, month and year fields', () => {
    const c = parseCrontab('0-9 * * 31 12 * 2025')
    assert.equal(crontabMatches(c, at('2025-12-31T23:59:09Z')), true)
    assert.equal(crontabMatches(c, at('2025-12-31T23:59:10Z')), false)
    assert.equal(crontabMatches(c, at('2024-12-31T23:59:05Z')), false)
    assert.equal(crontabMatches(c, at('2025-11-30T23:59:05Z')), false)
  })
  test('all fields must match (no Vixie-cron OR of day of month and day of week)', () => {
    // 2025-06-01 is a Sunday (0) and the 1st.
    const c = parseCrontab('* * * 1 * 1 *')
    assert.equal(crontabMatches(c, at('2025-06-01T00:00:00Z')), false)
    assert.equal(crontabMatches(c, at('2025-09-01T00:00:00Z')), true) // Monday the 1st
  })
  test('lists mix numbers, ranges and steps; extra whitespace is allowed', () => {
    const c = parseCrontab('  *  0,10-12,50-59/5  *  *  *  *  *  ')
    const minutes = [0, 10, 11, 12, 50, 55]
    for (let m = 0; m < 60; m++) {
      const iso = `2025-06-01T00:${String(m).padStart(2, '0')}:00Z`
      assert.equal(crontabMatches(c, at(iso)), minutes.includes(m), iso)
    }
  })
  test('an invalid Date never matches', () => {
    assert.equal(crontabMatches(parseCrontab('* * * * * * *'), new Date('nope')), false)
  })
})

describe('crontab: malformed entries are rejected with ERR_INVALID_ARGUMENT naming the path', () => {
  const bad: Array<[string, string]> = [
    ['* * * * * *', 'six fields'],
    ['* * * * * * * *', 'eight fields'],
    ['', 'empty'],
    ['60 * * * * * *', 'second 60'],
    ['* 60 * * * * *', 'minute 60'],
    ['* * 24 * * * *', 'hour 24'],
    ['* * * 0 * * *', 'day of month 0'],
    ['* * * 32 * * *', 'day of month 32'],
    ['* * * * 13 * *', 'month 13'],
    ['* * * * * 7 *', 'day of week 7'],
    ['* * * * * * 1999', 'year 1999'],
    ['* * * * * * 10000', 'year 10000'],
    ['* 5-1 * * * * *', 'reversed range'],
    ['* */0 * * * * *', 'step 0'],
    ['* 5/2 * * * * *', 'step after a single number'],
    ['* 1-2-3 * * * *', 'double range'],
    ['* a * * * * *', 'letters'],
    ['* 1,,2 * * * * *', 'empty list element'],
    ['* *,1 * * * * *', 'star inside a list'],
    ['* -1 * * * * *', 'negative'],
    ['* 1.5 * * * * *', 'decimal'],
    ['* MON * * * * *', 'names are not in the oneM2M syntax'],
  ]
  for (const [text, why] of bad) {
    test(`${why}: "${text}"`, () => {
      assert.throws(
        () => parseCrontab(text, 'pv.acr[0].acco[0].actw[0]'),
        (err: unknown) => {
          const e = err as { code?: string; details?: { path?: string }; message?: string }
          assert.equal(e.code, 'ERR_INVALID_ARGUMENT')
          assert.equal(e.details?.path, 'pv.acr[0].acco[0].actw[0]')
          assert.match(e.message ?? '', /pv\.acr\[0\]\.acco\[0\]\.actw\[0\]/)
          return true
        },
      )
    })
  }
})
