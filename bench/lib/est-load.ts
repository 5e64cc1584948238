/**
 * EST load for bench/bootstrap.ts (not a test): a tenant CA created through the replica's Pki
 * gRPC API, one-time enrolment tokens made before the clock starts, and the EST operations the
 * benchmark times:
 * - `enrol`: POST simpleenroll with a token over a kept-alive HTTPS connection: token check,
 *   CSR checks (parse, P-256, proof of possession = one ECDSA verify), token consumption
 *   (revision-checked KV update), certificate signed by the issuing CA key IN THE KMS (one gRPC
 *   Sign), certificate record (KV create), PKCS#7 response;
 * - `kmsBound`: the crypto an enrolment cannot avoid given that the CA key never leaves the KMS:
 *   one KMS Sign with the issuing CA key (the service's own PKI client) + one local verify;
 * - `inProcess`: one ECDSA P-256 sign + one verify with node:crypto on this thread.
 * The CSR is made once (a device makes its own key and CSR); the server checks it every time.
 */
import { createPublicKey, createSign, createVerify, generateKeyPairSync, randomBytes, verify } from 'node:crypto'
import { Agent, request } from 'node:https'
import type * as grpc from '@grpc/grpc-js'
import { promiseClient } from '@m2msec/runtime'
import { CreateCaRequest, CreateEnrolmentAuthorizationRequest, PkiClient, PkiService } from '@m2msec/proto/bootstrap/v1'
import { createKeyAndCsr } from '@m2msec/sdk/pki'
import { certificateDerFromPem, leafTbsCertificate, newSerialHex } from '@m2msec/pki'
import { createPkiKmsClient, type PkiKmsClientOptions } from '../../services/bootstrap/src/pki/index.ts'

/** What {@link setupEstLoad} needs. */
export interface EstLoadOptions {
  readonly tenant: string
  /** The CA domain; enrolled names lie below it. */
  readonly domain: string
  /** EST base URL of the replica (`https://host:port`) and the CA that signed its TLS certificate. */
  readonly estUrl: string
  readonly estCaPem: string
  readonly grpcTarget: string
  /** Admin credentials of `tenant` for the Pki gRPC API. */
  readonly adminCredentials: grpc.ChannelCredentials
  /** The service's KMS client settings (platform identity), for the KMS-bound row. */
  readonly kmsClient: PkiKmsClientOptions
  /** HTTPS connections kept alive (= most enrolments in flight). */
  readonly connections: number
  /** Enrolment tokens to make up front (each enrolment uses one). */
  readonly tokens: number
}

/** The timed operations, the tokens left and cleanup. */
export interface EstLoad {
  readonly enrol: () => Promise<void>
  readonly kmsBound: () => Promise<void>
  readonly inProcess: () => Promise<void>
  tokensLeft(): number
  close(): void
}

/**
 * Creates the tenant CA and the tokens and returns the operations.
 *
 * @example
 * ```ts
 * const est = await setupEstLoad({ tenant, domain, estUrl, estCaPem, grpcTarget, adminCredentials, kmsClient, connections: 16, tokens: 8000 })
 * await est.enrol()
 * ```
 */
export async function setupEstLoad(o: EstLoadOptions): Promise<EstLoad> {
  const channel = new PkiClient(o.grpcTarget, o.adminCredentials)
  const pki = promiseClient(PkiService, channel)
  const ca = (await pki.createCa(CreateCaRequest.fromPartial({ domain: o.domain }))).ca
  if (ca === undefined) throw new Error('CreateCa answered without a CA')
  const ae = `m2m://${o.domain}/in-cse/Cae-bench`
  const tokens: string[] = []
  for (let i = 0; i < o.tokens; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, o.tokens - i) }, () =>
        pki.createEnrolmentAuthorization(
          CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [ae], ttlSeconds: 3600 }),
        ),
      ),
    )
    tokens.push(...batch.map((b) => b.token))
  }
  const device = await createKeyAndCsr({ uris: [ae], commonName: 'meter-bench' })
  const body = Buffer.from(device.csrDer).toString('base64')
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, ca: o.estCaPem })
  const url = `${o.estUrl}/.well-known/est/${encodeURIComponent(o.tenant)}/simpleenroll`
  const enrol = () =>
    new Promise<void>((resolve, reject) => {
      const token = tokens.pop()
      if (token === undefined) return reject(new Error('out of enrolment tokens: raise --tokens'))
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${token}` } },
        (res) => {
          res.resume()
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  // What the KMS signs per enrolment: a real leaf TBSCertificate of this CA (about 500 bytes).
  const issuingDer = certificateDerFromPem(ca.chainPem[0] ?? '')
  const issuingKey = createPublicKey({ key: ca.chainPem[0] ?? '', format: 'pem' })
  const now = Date.now()
  const tbs = leafTbsCertificate(
    {
      serialHex: newSerialHex((n) => new Uint8Array(randomBytes(n))),
      publicKeySpki: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
        format: 'der',
        type: 'spki',
      }),
      names: { uris: [ae], dnsNames: [] },
      commonName: 'meter-bench',
      notBefore: new Date(now),
      notAfter: new Date(now + 86_400_000),
      crlUrl: ca.crlUrl,
      ocspUrl: ca.ocspUrl,
    },
    issuingDer,
  )
  const kms = createPkiKmsClient(o.kmsClient)
  const kmsBound = async () => {
    const sig = await kms.sign(o.tenant, ca.issuingKeyId, tbs)
    if (!verify('sha256', tbs, { key: issuingKey, dsaEncoding: 'ieee-p1363' }, sig))
      throw new Error('KMS signature does not verify')
  }

  const local = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const inProcess = async () => {
    const sig = createSign('sha256').update(tbs).sign(local.privateKey)
    if (!createVerify('sha256').update(tbs).verify(local.publicKey, sig)) throw new Error('verify failed')
  }

  return {
    enrol,
    kmsBound,
    inProcess,
    tokensLeft: () => tokens.length,
    close() {
      agent.destroy()
      kms.close()
      channel.close()
    },
  }
}
