import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PskIdentityScanner } from '../../src/rspf/tls/psk-identity.ts'

function record(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(5)
  h[0] = type
  h.writeUInt16BE(0x0303, 1)
  h.writeUInt16BE(body.length, 3)
  return Buffer.concat([h, body])
}
function handshake(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4)
  h[0] = type
  h.writeUIntBE(body.length, 1, 3)
  return Buffer.concat([h, body])
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b])

function clientHello(extensions: Buffer[]): Buffer {
  const exts = Buffer.concat(extensions)
  return handshake(
    1,
    Buffer.concat([
      Buffer.from([3, 3]),
      Buffer.alloc(32, 7),
      Buffer.from([0]),
      vec16(Buffer.from([0x13, 0x01])),
      Buffer.from([1, 0]),
      vec16(exts),
    ]),
  )
}
function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(data)])
}

describe('PskIdentityScanner', () => {
  const id = 'dev-1@mef.example.com'

  it('finds the TLS 1.2 ClientKeyExchange identity, also when bytes arrive one at a time', () => {
    const hello = record(22, clientHello([ext(0, Buffer.from('x'))]))
    const cke = record(22, handshake(16, vec16(Buffer.from(id))))
    const ccs = record(20, Buffer.from([1]))
    const stream = Buffer.concat([hello, cke, ccs])
    const scanner = new PskIdentityScanner()
    const forwarded: Buffer[] = []
    let found: { identity: string; held: Buffer } | undefined
    for (let i = 0; i < stream.length && found === undefined; i++) {
      const r = scanner.scan(stream.subarray(i, i + 1))
      forwarded.push(r.forward)
      if (r.kind === 'identity') found = { identity: r.identity, held: r.held }
      assert.notEqual(r.kind, 'none')
    }
    assert.equal(found?.identity, id)
    // The ClientHello went through; the record with the identity is held back.
    assert.deepEqual(Buffer.concat(forwarded), hello)
    assert.deepEqual(found?.held, cke)
  })

  it('finds the TLS 1.3 pre_shared_key identity in the ClientHello', () => {
    const identities = vec16(Buffer.concat([vec16(Buffer.from(id)), Buffer.alloc(4)]))
    const binders = vec16(Buffer.concat([Buffer.from([32]), Buffer.alloc(32)]))
    const hello = record(
      22,
      clientHello([ext(43, Buffer.from([2, 3, 4])), ext(41, Buffer.concat([identities, binders]))]),
    )
    const r = new PskIdentityScanner().scan(hello)
    assert.equal(r.kind, 'identity')
    assert.equal(r.kind === 'identity' ? r.identity : '', id)
    assert.equal(r.forward.length, 0)
  })

  it('gives up on non-handshake records and on data that is not TLS', () => {
    const hello = record(22, clientHello([]))
    const r = new PskIdentityScanner().scan(Buffer.concat([hello, record(20, Buffer.from([1]))]))
    assert.equal(r.kind, 'none')
    assert.equal(r.forward.length, hello.length + 6)
    assert.equal(new PskIdentityScanner().scan(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind, 'none')
  })
})
