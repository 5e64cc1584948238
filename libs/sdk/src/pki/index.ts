/**
 * @m2msec/sdk/pki: device side of EST enrolment (RFC 7030) against the m2msec bootstrap
 * service. Makes a P-256 key and a PKCS#10 CSR whose subjectAltName carries the device's
 * AE-ID / CSE-ID / device URI, enrols it with a one-time token, a claim certificate or a GBA
 * key (HTTP Digest with Ks_NAF, after bootstrapping with `@m2msec/sdk/gba`), and renews with
 * simplereenroll using the current certificate as TLS client certificate.
 * Failures are M2msecErrors with the server's code (header `m2msec-error-code`).
 *
 * @example
 * ```ts
 * import { createEstClient, createKeyAndCsr } from '@m2msec/sdk/pki'
 * const est = createEstClient({ baseUrl: 'https://mef.example:8443/.well-known/est/acme', caPem })
 * const { keyPem, csrDer } = await createKeyAndCsr({ uris: ['m2m://acme.example/in-cse/Cae-1'] })
 * const { certificatePem } = await est.simpleEnroll(csrDer, { token })
 * // later, before expiry:
 * const next = await createKeyAndCsr({ uris: ['m2m://acme.example/in-cse/Cae-1'] })
 * const renewed = await est.simpleReenroll(next.csrDer, { certPem: certificatePem, keyPem })
 * ```
 */
import 'reflect-metadata'
import { randomBytes, webcrypto } from 'node:crypto'
import { importPKCS8, SignJWT } from 'jose'
import type { IncomingHttpHeaders } from 'node:http'
import { request } from 'node:https'
import * as x509 from '@peculiar/x509'
import { M2msecError, isErrorCode } from '@m2msec/errors'
import { computeResponse, formatAuthorization, parseWwwAuthenticate, type DigestChallenge } from '@m2msec/gba'

x509.cryptoProvider.set(webcrypto)

/** What the CSR asks for. */
export interface CsrRequest {
  /** subjectAltName URIs (AE-ID / device id as `scheme://host/...`). */
  readonly uris?: readonly string[]
  /** subjectAltName DNS names (CSE-ID public domain name form). */
  readonly dnsNames?: readonly string[]
  /** Optional subject common name (≤ 64 characters). */
  readonly commonName?: string
}

/** A new key pair and its CSR. */
export interface KeyAndCsr {
  /** PKCS#8 PEM of the new private key: keep it on the device. */
  readonly keyPem: string
  readonly csrDer: Uint8Array
  readonly csrPem: string
}

/**
 * Generates an EC P-256 key and a CSR signed with it (ecdsa-with-SHA256, SAN with the names).
 *
 * @example
 * ```ts
 * const { keyPem, csrDer } = await createKeyAndCsr({ uris: ['m2m://acme.example/in-cse/Cae-1'] })
 * ```
 */
export async function createKeyAndCsr(req: CsrRequest): Promise<KeyAndCsr> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const names = [
    ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
  ]
  if (names.length === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'a CSR needs at least one URI or DNS name')
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(req.commonName === undefined ? {} : { name: [{ CN: [req.commonName] }] }),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  })
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)
  return {
    keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
    csrDer: new Uint8Array(csr.rawData),
    csrPem: `${csr.toString('pem')}\n`,
  }
}

/** Options of {@link createEstClient}. */
export interface EstClientOptions {
  /** `https://host:port/.well-known/est/<tenant>`. */
  readonly baseUrl: string
  /** PEM CA(s) that issued the EST server's TLS certificate. */
  readonly caPem: string
  /** Deadline of each request, ms. Default 10 000. */
  readonly timeoutMs?: number
  /**
   * GBA enrolment: the NAF FQDN whose Ks_NAF answers the Digest challenge (the realm must be
   * `3GPP-bootstrapping@<nafFqdn>`). Default: the host of `baseUrl`.
   */
  readonly nafFqdn?: string
}

/** The GBA key of a bootstrapped device (see `@m2msec/sdk/gba`). */
export interface GbaEnrolmentKey {
  /** The B-TID of the bootstrapping session (the Digest username). */
  readonly btid: string
  /** Ks_NAF for this NAF FQDN and Ua protocol id `UA_PROTOCOL_ID.httpDigest`. */
  ksNaf(nafFqdn: string): Uint8Array | Promise<Uint8Array>
}

/** An issued certificate. */
export interface EnrolledCertificate {
  readonly certificateDer: Uint8Array
  readonly certificatePem: string
}

/** EST operations of one tenant. */
export interface EstClient {
  /** The CA certificates (issuing CA first, then root) as PEM. */
  caCertificates(): Promise<string[]>
  /** simpleenroll with a one-time enrolment token `<id>.<secret>` (sent as Bearer). */
  simpleEnroll(csrDer: Uint8Array, auth: { token: string }): Promise<EnrolledCertificate>
  /** simpleenroll authenticated by a claim (manufacturer) certificate as TLS client certificate. */
  simpleEnrollWithClaim(csrDer: Uint8Array, claim: { certPem: string; keyPem: string }): Promise<EnrolledCertificate>
  /**
   * simpleenroll authorized by GBA (RFC 7030 §3.2.3, TS 24.109 §5.2): fetches a Digest
   * challenge, checks its realm names this NAF, then answers with username = B-TID and
   * password = base64(Ks_NAF), qop auth-int (the CSR is covered) when offered.
   */
  simpleEnrollWithGba(csrDer: Uint8Array, gba: GbaEnrolmentKey): Promise<EnrolledCertificate>
  /** simplereenroll with the current certificate and its key as TLS client credentials. */
  simpleReenroll(csrDer: Uint8Array, current: { certPem: string; keyPem: string }): Promise<EnrolledCertificate>
}

function pemOf(der: Uint8Array): string {
  return `${x509.PemConverter.encode(der.slice().buffer, 'CERTIFICATE')}\n`
}

function certsOf(body: string): Uint8Array[] {
  try {
    return new x509.X509Certificates(body.replace(/\s+/g, '')).map((c) => new Uint8Array(c.rawData))
  } catch {
    throw new M2msecError('ERR_INTERNAL', 'the EST server answered with something that is not PKCS#7 certs-only')
  }
}

/**
 * @example
 * ```ts
 * const est = createEstClient({ baseUrl: 'https://127.0.0.1:8443/.well-known/est/acme', caPem })
 * const caPems = await est.caCertificates()
 * ```
 */
export function createEstClient(opts: EstClientOptions): EstClient {
  const base = opts.baseUrl.replace(/\/+$/, '')
  const timeoutMs = opts.timeoutMs ?? 10_000

  interface Answer {
    readonly status: number
    readonly headers: IncomingHttpHeaders
    /** Each WWW-Authenticate field on its own (`headers` joins them with commas). */
    readonly challenges: readonly string[]
    readonly text: string
  }

  function exchange(
    op: string,
    init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; cert?: string; key?: string },
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${base}/${op}`,
        {
          method: init.method,
          ca: opts.caPem,
          headers: init.headers,
          ...(init.cert === undefined ? {} : { cert: init.cert, key: init.key }),
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const challenges = res.rawHeaders.filter(
              (_, i, raw) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === 'www-authenticate',
            )
            const text = Buffer.concat(chunks).toString('utf8')
            resolve({ status: res.statusCode ?? 0, headers: res.headers, challenges, text })
          })
        },
      )
      req.on('timeout', () => req.destroy(new M2msecError('ERR_UNAVAILABLE', `EST ${op} timed out`)))
      req.on('error', (err) =>
        reject(
          err instanceof M2msecError ? err : new M2msecError('ERR_UNAVAILABLE', `EST ${op} failed`, {}, { cause: err }),
        ),
      )
      req.end(init.body)
    })
  }

  function failure(op: string, answer: Answer): M2msecError {
    const header = answer.headers['m2msec-error-code']
    const code = typeof header === 'string' && isErrorCode(header) ? header : 'ERR_INTERNAL'
    const message = answer.text.replace(/^[A-Z_]+: /, '').trim() || `EST ${op} failed with HTTP ${answer.status}`
    return new M2msecError(code, message, { status: answer.status })
  }

  async function send(
    op: string,
    init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; cert?: string; key?: string },
  ): Promise<string> {
    const answer = await exchange(op, init)
    if (answer.status !== 200) throw failure(op, answer)
    return answer.text
  }

  /** The GBA Digest challenge of a 401, or ERR_UNAUTHENTICATED when the server offers none for this NAF. */
  function gbaChallenge(answer: Answer, nafFqdn: string): DigestChallenge {
    for (const header of answer.challenges) {
      if (!/^Digest\s/i.test(header)) continue
      const challenge = parseWwwAuthenticate(header)
      if (challenge.realm === `3GPP-bootstrapping@${nafFqdn}` && challenge.qop.length > 0) return challenge
    }
    throw new M2msecError('ERR_UNAUTHENTICATED', `the EST server offers no GBA Digest challenge for ${nafFqdn}`)
  }

  async function enrol(
    op: string,
    csrDer: Uint8Array,
    extra: { headers?: Record<string, string>; cert?: string; key?: string },
  ) {
    const body = Buffer.from(csrDer).toString('base64')
    const text = await send(op, {
      method: 'POST',
      body,
      ...extra,
      headers: { 'content-type': 'application/pkcs10', ...extra.headers },
    })
    const [cert] = certsOf(text)
    if (cert === undefined) throw new M2msecError('ERR_INTERNAL', 'the EST response holds no certificate')
    return { certificateDer: cert, certificatePem: pemOf(cert) }
  }

  return {
    async caCertificates() {
      return certsOf(await send('cacerts', { method: 'GET' })).map(pemOf)
    },
    simpleEnroll: (csrDer, auth) =>
      enrol('simpleenroll', csrDer, { headers: { authorization: `Bearer ${auth.token}` } }),
    simpleEnrollWithClaim: (csrDer, claim) => enrol('simpleenroll', csrDer, { cert: claim.certPem, key: claim.keyPem }),
    async simpleEnrollWithGba(csrDer, gba) {
      const nafFqdn = opts.nafFqdn ?? new URL(base).hostname
      const body = Buffer.from(csrDer).toString('base64')
      const post = { method: 'POST' as const, body, headers: { 'content-type': 'application/pkcs10' } }
      const first = await exchange('simpleenroll', post)
      if (first.status !== 401) throw failure('simpleenroll', first)
      const challenge = gbaChallenge(first, nafFqdn)
      const qop = challenge.qop.includes('auth-int') ? 'auth-int' : 'auth'
      const ksNaf = await gba.ksNaf(nafFqdn)
      const uri = new URL(`${base}/simpleenroll`).pathname
      const cnonce = randomBytes(12).toString('base64url')
      const nc = '00000001'
      const response = computeResponse({
        username: gba.btid,
        realm: challenge.realm,
        password: Buffer.from(ksNaf).toString('base64'),
        method: 'POST',
        uri,
        nonce: challenge.nonce,
        qop,
        nc,
        cnonce,
        body,
      })
      const authorization = formatAuthorization({
        username: gba.btid,
        realm: challenge.realm,
        nonce: challenge.nonce,
        uri,
        response,
        algorithm: 'MD5',
        qop,
        nc,
        cnonce,
        ...(challenge.opaque === undefined ? {} : { opaque: challenge.opaque }),
      })
      return enrol('simpleenroll', csrDer, { headers: { authorization } })
    },
    simpleReenroll: (csrDer, current) =>
      enrol('simplereenroll', csrDer, { cert: current.certPem, key: current.keyPem }),
  }
}

/** Options of {@link certificateClientAssertion}. */
export interface CertificateAssertionOptions {
  /** PKCS#8 PEM of the device key (from {@link createKeyAndCsr}). */
  readonly keyPem: string
  /** The device certificate then its issuing CA (PEM, leaf first; the root is not needed). */
  readonly chainPem: readonly string[]
  /** The authn entity the certificate names (URI SAN = the entity id, or its full URI). */
  readonly entityId: string
  /** The token endpoint id (authn `token.endpointId`); default `m2msec-authn-token`. */
  readonly audience?: string
  /** Assertion lifetime, seconds (at most 300); default 60. */
  readonly lifetimeSec?: number
}

/**
 * An ES256 client assertion for authn's IssueToken with the EST-enrolled certificate as
 * credential: header `x5c` = the chain, so authn validates it against the tenant's trust
 * anchors (the tenant's PKI root CA) and its CRL without an AddCredential.
 *
 * @example
 * ```ts
 * const { assertion } = await certificateClientAssertion({ keyPem, chainPem: [certificatePem, issuingPem], entityId })
 * ```
 */
export async function certificateClientAssertion(
  opts: CertificateAssertionOptions,
): Promise<{ assertion: string; jti: string }> {
  const x5c = opts.chainPem.flatMap((pem) =>
    x509.PemConverter.decode(pem).map((der) => Buffer.from(der).toString('base64')),
  )
  const key = await importPKCS8(opts.keyPem, 'ES256')
  const jti = randomBytes(16).toString('base64url')
  const assertion = await new SignJWT({ jti })
    .setProtectedHeader({ alg: 'ES256', x5c })
    .setIssuer(opts.entityId)
    .setSubject(opts.entityId)
    .setAudience(opts.audience ?? 'm2msec-authn-token')
    .setIssuedAt()
    .setExpirationTime(`${opts.lifetimeSec ?? 60}s`)
    .sign(key)
  return { assertion, jti }
}
