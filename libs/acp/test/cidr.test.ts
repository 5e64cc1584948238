import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { cidrContains, parseCidr, parseIpAddress, type IpAddress } from '../src/index.ts'

function ip(text: string): IpAddress {
  const a = parseIpAddress(text)
  assert.ok(a, `parse ${text}`)
  return a
}

describe('addresses', () => {
  test('IPv4 dotted decimal', () => {
    assert.deepEqual([...ip('10.125.0.1').bytes], [10, 125, 0, 1])
    assert.equal(ip('255.255.255.255').family, 4)
  })
  test('IPv6 forms of RFC 4291 §2.2 (full, compressed, embedded IPv4), case-insensitive', () => {
    const full = ip('2001:0db8:0000:0000:0000:0000:0000:0001')
    assert.deepEqual(ip('2001:db8::1').bytes, full.bytes)
    assert.deepEqual(ip('2001:DB8::1').bytes, full.bytes)
    assert.deepEqual([...ip('::').bytes], new Array(16).fill(0))
    assert.deepEqual([...ip('::1').bytes], [...new Array(15).fill(0), 1])
    assert.deepEqual([...ip('::ffff:10.1.2.3').bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3])
    assert.deepEqual([...ip('1:2:3:4:5:6:7::').bytes].slice(12), [0, 7, 0, 0])
  })
  test('malformed addresses are null', () => {
    for (const bad of [
      '',
      '10.1.2',
      '10.1.2.3.4',
      '256.1.1.1',
      '010.1.1.1',
      '1.2.3.-1',
      ' 10.1.2.3',
      '1::2::3',
      ':1',
      '1:',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7:8::',
      'g::1',
      '12345::1',
      'fe80::1%eth0',
      '::ffff:300.1.1.1',
      '10.1.2.3/8',
    ]) {
      assert.equal(parseIpAddress(bad), null, bad)
    }
  })
})

describe('CIDR blocks', () => {
  test('TS-0004 examples: 10.125.0.0/16, a bare 122.77.12.1, ::/0, Fadf:ddd0::/32, abcd:ffff:abb0:aaaa::/64', () => {
    const v4 = parseCidr('10.125.0.0/16', 4)
    assert.equal(v4.prefix, 16)
    assert.equal(cidrContains(v4, ip('10.125.0.0')), true)
    assert.equal(cidrContains(v4, ip('10.125.255.255')), true)
    assert.equal(cidrContains(v4, ip('10.124.255.255')), false)
    assert.equal(cidrContains(v4, ip('10.126.0.0')), false)

    const host = parseCidr('122.77.12.1', 4)
    assert.equal(host.prefix, 32)
    assert.equal(cidrContains(host, ip('122.77.12.1')), true)
    assert.equal(cidrContains(host, ip('122.77.12.2')), false)

    const any6 = parseCidr('::/0', 6)
    assert.equal(cidrContains(any6, ip('ffff::1')), true)

    const b = parseCidr('Fadf:ddd0::/32', 6)
    assert.equal(cidrContains(b, ip('fadf:ddd0::')), true)
    assert.equal(cidrContains(b, ip('fadf:ddd0:ffff:ffff:ffff:ffff:ffff:ffff')), true)
    assert.equal(cidrContains(b, ip('fadf:ddd1::')), false)
    assert.equal(cidrContains(b, ip('fadf:ddcf:ffff:ffff:ffff:ffff:ffff:ffff')), false)

    const c = parseCidr('abcd:ffff:abb0:aaaa::/64', 6)
    assert.equal(cidrContains(c, ip('abcd:ffff:abb0:aaaa:ffff:ffff:ffff:ffff')), true)
    assert.equal(cidrContains(c, ip('abcd:ffff:abb0:aaab::')), false)
  })
  test('prefixes that do not end on a byte boundary', () => {
    const b = parseCidr('192.168.4.0/22', 4)
    assert.equal(cidrContains(b, ip('192.168.7.255')), true)
    assert.equal(cidrContains(b, ip('192.168.8.0')), false)
    assert.equal(cidrContains(b, ip('192.168.3.255')), false)
    const b6 = parseCidr('2001:db8::/29', 6)
    assert.equal(cidrContains(b6, ip('2001:dbf:ffff::1')), true)
    assert.equal(cidrContains(b6, ip('2001:dc0::')), false)
  })
  test('0.0.0.0/0 matches every IPv4 address', () => {
    const all = parseCidr('0.0.0.0/0', 4)
    assert.equal(cidrContains(all, ip('255.255.255.255')), true)
    assert.equal(cidrContains(all, ip('0.0.0.0')), true)
  })
  test('IPv4-mapped IPv6 is the same host as the IPv4 address, in both directions', () => {
    const v4 = parseCidr('10.125.0.0/16', 4)
    assert.equal(cidrContains(v4, ip('::ffff:10.125.3.4')), true)
    assert.equal(cidrContains(v4, ip('::ffff:10.126.3.4')), false)
    assert.equal(cidrContains(v4, ip('::10.125.3.4')), false) // IPv4-compatible, not mapped
    const mapped = parseCidr('::ffff:10.125.0.0/112', 6)
    assert.equal(cidrContains(mapped, ip('10.125.9.9')), true)
    assert.equal(cidrContains(mapped, ip('10.124.9.9')), false)
    assert.equal(cidrContains(parseCidr('::/0', 6), ip('10.1.1.1')), true)
    assert.equal(cidrContains(parseCidr('2001:db8::/32', 6), ip('10.1.1.1')), false)
  })
  test('malformed blocks are rejected with ERR_INVALID_ARGUMENT naming the path', () => {
    const cases: Array<[string, 4 | 6]> = [
      ['10.125.0.0/33', 4],
      ['10.125.0.0/', 4],
      ['10.125.0.0/-1', 4],
      ['10.125.0.0/08', 4],
      ['10.125.0.0/16/1', 4],
      ['10.125.1.0/16', 4], // host bits set
      ['10.125.0', 4],
      ['::/0', 4], // wrong family for the list it is in
      ['10.0.0.0/8', 6],
      ['::/129', 6],
      ['fadf:ddd0::1/32', 6], // host bits set
      ['fe80::%eth0/64', 6],
      ['', 4],
    ]
    for (const [text, family] of cases) {
      assert.throws(
        () => parseCidr(text, family, 'acip.ipv4[2]'),
        (err: unknown) => {
          const e = err as { code?: string; details?: { path?: string } }
          assert.equal(e.code, 'ERR_INVALID_ARGUMENT', text)
          assert.equal(e.details?.path, 'acip.ipv4[2]')
          return true
        },
        text,
      )
    }
  })
})
