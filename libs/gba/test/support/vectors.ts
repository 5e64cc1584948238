/**
 * Shared test data with its provenance. Every value below was produced outside this
 * package's code (published, or computed with Python's hashlib/hmac by the project's
 * research notes or by us), so the tests compare against numbers the code under test did
 * not make.
 */
import { hexToBytes } from '@m2msec/crypto'

/** MILENAGE test set 1 (3GPP TS 35.207/35.208; also libs/crypto/test/vectors/milenage.json). */
export const SET1 = {
  k: hexToBytes('465b5ce8b199b49faa5f0a2ee238a6bc'),
  opc: hexToBytes('cd63cb71954a9f4e48a5994e37a02baf'),
  rand: hexToBytes('23553cbe9637a89d218ae64dae47bf35'),
  sqn: 0xff9bb4d0b607n,
  amf: hexToBytes('b9b9'),
  res: hexToBytes('a54211d5e3ba50bf'),
  ck: hexToBytes('b40ba9a3c58b2a05bbf0d987b21bf8cb'),
  ik: hexToBytes('f769bcd751044604127672711c6d3441'),
  /** `derived_autn_computed` in milenage.json (computed by the vector author). */
  autn: hexToBytes('55f328b43577b9b94a9ffac354dfafb3'),
} as const

/** Identities used by the research notes' GBA vectors (shared/vectors/gba-kdf.json). */
export const IMPI = '001010123456789@ims.mnc001.mcc001.3gppnetwork.org'
export const BSF_HOST = 'bsf.mnc001.mcc001.pub.3gppnetwork.org'
export const NAF_FQDN = 'naf.example.com'

/** gba-kdf.json: B-TID for the set-1 RAND (COMPUTED-ONLY by the vector author). */
export const SET1_BTID = 'I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org'

/** gba-kdf.json: Ks_NAF for set-1 CK/IK/RAND, IMPI, naf.example.com, Ua 01 00 00 00 02 (COMPUTED-ONLY). */
export const SET1_KS_NAF = hexToBytes('ae9ecc3c7c17692c1d44d6d68d53a3b1624a706039753ba991e8293f3cfdec08')

/**
 * The research digest's Digest-AKA worked example (shared/specs/gba-3gpp.md §4 step 4,
 * COMPUTED-ONLY by its author with the gba_me.py formula). Its inputs are not in the shared
 * files; we recovered them by trying candidates in Python: set-1 RES as the password,
 * nonce = base64(set-1 RAND || AUTN), realm = BSF_HOST, GET /, empty body.
 */
export const SET1_DIGEST = {
  nonce: 'I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=',
  cnonce: '0a4f113b',
  nc: '00000001',
  qop: 'auth-int',
  response: '26d91881d4f34c67c3c171426686ad62',
} as const

/**
 * A real BSF exchange published in fasferraz/GBA_ME README.md (commit 0d4413aa): the
 * challenge parameters (printed there as a dict, so the header text is rebuilt), the USIM
 * output and the 200 OK. IMSI/MSISDN look anonymised, which is why its rspauth cannot be
 * recomputed (shared/specs/gba-3gpp.md §4 step 5).
 */
export const TRACE = {
  realm: 'bsf.mnc045.mcc123.pub.3gppnetwork.org',
  nonce: 'fve4iTWb1rTb297CzVSrpwx1bsNP9gAAiCivEWFj/Po=',
  opaque: 'e1809295493786932cb220ec1c6a8630',
  rand: hexToBytes('7ef7b889359bd6b4dbdbdec2cd54aba7'),
  autn: hexToBytes('0c756ec34ff600008828af116163fcfa'),
  res: hexToBytes('4237c8c339014f60'),
  cnonce: '468f5b9d04a32d38',
  rspauth: 'b8d0e59c6ed48db3a632f3daffb9aa2b',
  /** gba_me.py builds the username as IMSI@ims.mncMNC.mccMCC.3gppnetwork.org. */
  username: '123454901000504@ims.mnc045.mcc123.3gppnetwork.org',
  /** COMPUTED-ONLY by us (python3 hashlib, gba_me.py get_response formula) for the values above. */
  responseComputedByUs: '745d5b2f0473128bbe9532c6b3e416cd',
  body:
    '<?xml version="1.0" encoding="UTF-8"?>\n<BootstrappingInfo xmlns="uri:3gpp-gba">\n' +
    '<btid>fve4iTWb1rTb297CzVSrpw==@bsf.ims.mnc045.mcc123.pub.3gppnetwork.org</btid>\n' +
    '<lifetime>2020-10-28T23:36:26Z</lifetime>\n</BootstrappingInfo>\n',
  btid: 'fve4iTWb1rTb297CzVSrpw==@bsf.ims.mnc045.mcc123.pub.3gppnetwork.org',
} as const
