/**
 * `@m2msec/sdk/rspf`: the Enrolee side of the oneM2M Remote Security Provisioning Framework
 * (TS-0003 §8.3.2.1 TLS-PSK with a pre-provisioned Kpm, §8.3.2.2 certificates), and the
 * Enrolment Target side of `/fetchCredentials/<KeID>/<SUID>`.
 *
 * After the MEF Handshake both sides export 48 bytes with `EXPORTER-oneM2M-Bootstrap`
 * (RFC 5705, no context): RelativeKeID = first 16, Ke = last 32, KeID =
 * hex(RelativeKeID)@MEF-FQDN. The MEF answers with one JSON line naming the KeID it stored; the
 * client checks that it matches its own.
 *
 * @example
 * ```ts
 * const e = await enrolWithPsk({ host: 'mef.example.com', port: 7443, mefFqdn: 'mef.example.com', kpmId, kpm })
 * const km = deriveCredential(e.ke, 21, 'maf.example.com')   // what the MAF will fetch
 * e.ke.fill(0)
 * ```
 */
import https from 'node:https'
import tls from 'node:tls'
import { compactDecrypt, importJWK, type JWK } from 'jose'
import {
  constantTimeEqual,
  deriveKm,
  deriveKpsa,
  deriveUsageConstrainedKey,
  enrolmentKeyFromExporter,
  ONEM2M_EXPORTER_LABEL,
  ONEM2M_EXPORTER_LENGTH,
} from '@m2msec/crypto'
import { isErrorCode, M2msecError } from '@m2msec/errors'

/** The result of a successful enrolment. `ke` is the Enrolee's secret: zeroise it when done. */
export interface RspfEnrolment {
  readonly keId: string
  readonly relativeKeId: Uint8Array
  readonly ke: Uint8Array
  readonly enroleeId: string
  readonly expiresAt: Date
  /** Negotiated TLS version and cipher, e.g. `TLSv1.2`, `PSK-AES128-CBC-SHA256`. */
  readonly protocol: string
  readonly cipher: string
}

interface CommonOptions {
  readonly host: string
  readonly port: number
  /** The MEF's FQDN: the KeID suffix (and the expected server name for certificates). */
  readonly mefFqdn: string
  /** Highest TLS version. Default `TLSv1.3`; TS-0003 V3 names TLS 1.2. */
  readonly maxVersion?: tls.SecureVersion
  readonly minVersion?: tls.SecureVersion
  /** OpenSSL cipher list. */
  readonly ciphers?: string
  /** Overall deadline, ms. Default 10000. */
  readonly timeoutMs?: number
}

/** Options of {@link enrolWithPsk}. */
export interface PskEnrolOptions extends CommonOptions {
  /** KpmID, sent as psk_identity. */
  readonly kpmId: string
  /** Kpm, the pre-provisioned key (the caller keeps and zeroises it). */
  readonly kpm: Uint8Array
}

/** Options of {@link enrolWithCertificate}. */
export interface CertificateEnrolOptions extends CommonOptions {
  /** PEM trust anchor(s) for the MEF's FQDN certificate. */
  readonly ca: string
  /** PEM client certificate (chain) and private key of the Enrolee. */
  readonly cert: string
  readonly key: string
}

/** Default PSK cipher list: the TS-0003 mandatory suite first, then AEAD and TLS 1.3. */
export const DEFAULT_PSK_CIPHERS =
  'PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256:TLS_AES_128_GCM_SHA256'

function exportEnrolmentKey(socket: tls.TLSSocket, mefFqdn: string) {
  // No context (TS-0003 §10.3.1); node treats an undefined context as "none".
  const raw = socket.exportKeyingMaterial(
    ONEM2M_EXPORTER_LENGTH,
    ONEM2M_EXPORTER_LABEL.bootstrap,
    undefined as unknown as Buffer,
  )
  const exported = new Uint8Array(raw)
  raw.fill(0)
  const out = enrolmentKeyFromExporter(exported, mefFqdn)
  exported.fill(0)
  return out
}

function runEnrolment(socket: tls.TLSSocket, opts: CommonOptions): Promise<RspfEnrolment> {
  return new Promise((resolve, reject) => {
    let local: ReturnType<typeof exportEnrolmentKey> | undefined
    let text = ''
    const timer = setTimeout(
      () => fail(new M2msecError('ERR_UNAVAILABLE', 'the MEF did not answer in time')),
      opts.timeoutMs ?? 10_000,
    )
    const fail = (err: M2msecError) => {
      clearTimeout(timer)
      local?.ke.fill(0)
      socket.destroy()
      reject(err)
    }
    socket.once('secureConnect', () => {
      local = exportEnrolmentKey(socket, opts.mefFqdn)
    })
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      text += chunk
      if (text.length > 16_384) fail(new M2msecError('ERR_INVALID_ARGUMENT', 'MEF reply too long'))
    })
    socket.on('error', (err) =>
      fail(
        new M2msecError(
          'ERR_UNAUTHENTICATED',
          'MEF handshake failed',
          { reason: (err as NodeJS.ErrnoException).code ?? 'tls' },
          { cause: err },
        ),
      ),
    )
    socket.on('end', () => {
      const line = text.split('\n')[0] ?? ''
      let reply: Record<string, unknown>
      try {
        reply = JSON.parse(line) as Record<string, unknown>
      } catch {
        return fail(new M2msecError('ERR_UNAVAILABLE', 'the MEF closed the session without a reply'))
      }
      if (local === undefined) return fail(new M2msecError('ERR_UNAUTHENTICATED', 'no TLS session'))
      if (reply['status'] !== true) {
        const code = typeof reply['code'] === 'string' && isErrorCode(reply['code']) ? reply['code'] : 'ERR_INTERNAL'
        return fail(new M2msecError(code, `MEF refused the enrolment: ${String(reply['errorString'] ?? '')}`))
      }
      if (reply['keId'] !== local.keId) {
        return fail(new M2msecError('ERR_INTERNAL', 'the MEF stored another KeID than the one derived here'))
      }
      clearTimeout(timer)
      resolve({
        keId: local.keId,
        relativeKeId: local.relativeKeId,
        ke: local.ke,
        enroleeId: String(reply['enroleeId']),
        expiresAt: new Date(String(reply['expiresAt'])),
        protocol: socket.getProtocol() ?? '',
        cipher: socket.getCipher()?.name ?? '',
      })
    })
  })
}

/**
 * Runs the TLS-PSK MEF Handshake (psk_identity = KpmID, psk = Kpm) and derives Ke/KeID.
 *
 * Errors: wrong Kpm or unknown KpmID ERR_UNAUTHENTICATED; a refusal by the MEF its error code.
 */
export function enrolWithPsk(opts: PskEnrolOptions): Promise<RspfEnrolment> {
  const socket = tls.connect({
    host: opts.host,
    port: opts.port,
    ciphers: opts.ciphers ?? DEFAULT_PSK_CIPHERS,
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
    // PSK only: the server has no certificate to check.
    checkServerIdentity: () => undefined,
    pskCallback: () => ({ psk: Buffer.from(opts.kpm), identity: opts.kpmId }),
  })
  return runEnrolment(socket, opts)
}

/**
 * Runs the certificate MEF Handshake (mutual TLS; the MEF's certificate must name mefFqdn and
 * chain to `ca`) and derives Ke/KeID.
 */
export function enrolWithCertificate(opts: CertificateEnrolOptions): Promise<RspfEnrolment> {
  const socket = tls.connect({
    host: opts.host,
    port: opts.port,
    servername: opts.mefFqdn,
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
    ...(opts.ciphers === undefined ? {} : { ciphers: opts.ciphers }),
  })
  return runEnrolment(socket, opts)
}

/**
 * The key an Enrolment Target will fetch for `suid`, computed locally from Ke:
 * - 21 (MAF): Km = deriveKm(ke, MAF-ID) — `targetId` is the MAF's FQDN;
 * - 22 (SAEF): Kpsa = deriveKpsa(ke, id) — `targetId` is the target's Absolute CSE-ID/AE-ID;
 * - 23, 24, 25: the usage-constrained key — `targetId` is the target's FQDN (for a CSE/AE the
 *   FQDN form of its Absolute ID, e.g. `in-cse.sp.example.com` for `//sp.example.com/in-cse`).
 *
 * @example
 * ```ts
 * const kpsa = deriveCredential(ke, 22, '//sp.example.com/in-cse')
 * ```
 */
export function deriveCredential(ke: Uint8Array, suid: 21 | 22 | 23 | 24 | 25, targetId: string): Uint8Array {
  if (suid === 21) return deriveKm(ke, targetId)
  if (suid === 22) return deriveKpsa(ke, targetId)
  return deriveUsageConstrainedKey(ke, suid, targetId)
}

/** What fetchCredentials returns to an Enrolment Target. */
export interface FetchedCredential {
  /** JWE compact (ECDH-ES+A256KW / A256GCM) for the target's key: open it with {@link openCredential}. */
  readonly credential: string
  readonly enroleeId: string
  readonly lifetime: Date
  readonly suid: number
}

/** Options of {@link fetchCredentials}. */
export interface FetchCredentialsOptions {
  /** Base URL of the MEF's fetchCredentials listener, e.g. `https://mef.example.com:7445`. */
  readonly url: string
  readonly keId: string
  readonly suid: number
  /** PEM trust anchor of the MEF's server certificate. */
  readonly ca: string
  /** Client certificate and key (mTLS), and/or a bearer token. */
  readonly cert?: string
  readonly key?: string
  readonly token?: string
  /** Sent as X-M2M-Origin (the target's MAF FQDN or Absolute CSE-ID/AE-ID). */
  readonly origin?: string
  readonly timeoutMs?: number
}

/**
 * RETRIEVE `/fetchCredentials/<KeID>/<SUID>` as an Enrolment Target.
 *
 * Errors: the MEF's error code (e.g. ERR_PERMISSION_DENIED for a target the Enrolee did not
 * authorize, ERR_NOT_FOUND for an unknown or expired KeID).
 */
export function fetchCredentials(opts: FetchCredentialsOptions): Promise<FetchedCredential> {
  const url = new URL(`/fetchCredentials/${encodeURIComponent(opts.keId)}/${opts.suid}`, opts.url)
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca: opts.ca,
        ...(opts.cert === undefined ? {} : { cert: opts.cert }),
        ...(opts.key === undefined ? {} : { key: opts.key }),
        headers: {
          accept: 'application/json',
          ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
          ...(opts.origin === undefined ? {} : { 'x-m2m-origin': opts.origin }),
        },
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => {
          let json: Record<string, unknown>
          try {
            json = JSON.parse(body) as Record<string, unknown>
          } catch {
            return reject(new M2msecError('ERR_UNAVAILABLE', `MEF answered HTTP ${res.statusCode ?? 0} without JSON`))
          }
          if (json['status'] !== true) {
            const code = typeof json['code'] === 'string' && isErrorCode(json['code']) ? json['code'] : 'ERR_INTERNAL'
            return reject(new M2msecError(code, String(json['errorString'] ?? 'fetchCredentials failed')))
          }
          resolve({
            credential: String(json['credential']),
            enroleeId: String(json['enroleeId']),
            lifetime: new Date(String(json['lifetime'])),
            suid: Number(json['suid']),
          })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => reject(new M2msecError('ERR_UNAVAILABLE', 'MEF unreachable', {}, { cause: err })))
  })
}

/**
 * Opens a fetched credential with the target's private JWK (EC P-256, with `d`).
 *
 * @example
 * ```ts
 * const key = await openCredential(fetched.credential, targetPrivateJwk)
 * ```
 */
export async function openCredential(credential: string, privateJwk: JWK): Promise<Uint8Array> {
  const key = await importJWK(privateJwk, 'ECDH-ES+A256KW')
  const { plaintext } = await compactDecrypt(credential, key, {
    keyManagementAlgorithms: ['ECDH-ES+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  })
  return plaintext
}

/** Constant-time comparison of two keys (for checks in tests and tools; never log keys). */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b)
}
