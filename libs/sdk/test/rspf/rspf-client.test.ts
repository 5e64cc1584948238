import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import { enrolmentKeyFromExporter, deriveKm, deriveKpsa, deriveUsageConstrainedKey } from '@m2msec/crypto'
import { deriveCredential, enrolWithPsk, sameKey } from '../../src/rspf/index.ts'

const MEF = 'mef.example.com'

describe('sdk rspf PSK enrolee against a node:tls MEF stub', () => {
  const kpm = randomBytes(32)
  let server: tls.Server
  let port = 0
  // What the stub answers: its own KeID, or a forged one.
  let forge = false
  let serverKe: Uint8Array | undefined

  before(async () => {
    server = tls.createServer(
      {
        ciphers: 'PSK-AES128-CBC-SHA256:TLS_AES_128_GCM_SHA256',
        pskCallback: (_s, id) => (id === 'dev@mef.example.com' ? kpm : null),
      },
      (socket) => {
        const out = socket.exportKeyingMaterial(48, 'EXPORTER-oneM2M-Bootstrap', undefined as unknown as Buffer)
        const { ke, keId } = enrolmentKeyFromExporter(new Uint8Array(out), MEF)
        serverKe = ke
        const reply = {
          status: true,
          keId: forge ? `${'00'.repeat(16)}@${MEF}` : keId,
          enroleeId: '/asn-1',
          expiresAt: '2030-01-01T00:00:00Z',
        }
        socket.end(`${JSON.stringify(reply)}\n`)
      },
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  it('derives the same Ke and KeID as the server, in TLS 1.2 and 1.3', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      forge = false
      const e = await enrolWithPsk({
        host: '127.0.0.1',
        port,
        mefFqdn: MEF,
        kpmId: 'dev@mef.example.com',
        kpm,
        maxVersion,
      })
      assert.equal(e.protocol, maxVersion)
      assert.ok(serverKe !== undefined && sameKey(e.ke, serverKe))
      assert.match(e.keId, /^[0-9a-f]{32}@mef\.example\.com$/)
    }
  })

  it('refuses a MEF reply that names another KeID', async () => {
    forge = true
    await assert.rejects(
      enrolWithPsk({ host: '127.0.0.1', port, mefFqdn: MEF, kpmId: 'dev@mef.example.com', kpm }),
      (err: { code?: string }) => err.code === 'ERR_INTERNAL',
    )
  })

  it('maps SUIDs to Km, Kpsa and usage-constrained keys', () => {
    const ke = randomBytes(32)
    assert.ok(sameKey(deriveCredential(ke, 21, 'maf.example.com'), deriveKm(ke, 'maf.example.com')))
    assert.ok(sameKey(deriveCredential(ke, 22, '//sp.example.com/in'), deriveKpsa(ke, '//sp.example.com/in')))
    assert.ok(
      sameKey(deriveCredential(ke, 24, 'in.sp.example.com'), deriveUsageConstrainedKey(ke, 24, 'in.sp.example.com')),
    )
    assert.ok(!sameKey(deriveCredential(ke, 23, 'in.sp.example.com'), deriveCredential(ke, 24, 'in.sp.example.com')))
  })
})
