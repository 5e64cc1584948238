/**
 * Entity identifiers in oneM2M form (TS-0001 §7.2), checked per kind. Ids are compared
 * exactly (case-sensitive, no conversion between relative and absolute forms): register an
 * entity under the form its certificates and assertions use.
 *
 * - AE: AE-ID-Stem `C…`/`S…` (`Cmeter01`), SP-relative `/<CSE-ID>/<stem>`, absolute
 *   `//<SP-domain>/<CSE-ID>/<stem>`.
 * - CSE: SP-relative `/<CSE-ID>` (`/in-cse`), absolute `//<SP-domain>/<CSE-ID>`.
 * - DEVICE, GATEWAY: M2M-Node-ID as an OID (`1.2.840.10045.1.42`) or a URN
 *   (`urn:dev:mac:0024befffe804ff1`, RFC 9039 device URNs, `urn:imei:…`).
 */
import { M2msecError } from '@m2msec/errors'
import { LIMITS, type EntityKind } from './model.ts'

const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._-]{0,63}'
const STEM = '[CS][A-Za-z0-9._-]{1,127}'
const DOMAIN = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*'

const FORMS: Readonly<Record<EntityKind, readonly RegExp[]>> = {
  AE: [new RegExp(`^${STEM}$`), new RegExp(`^/${SEGMENT}/${STEM}$`), new RegExp(`^//${DOMAIN}/${SEGMENT}/${STEM}$`)],
  CSE: [new RegExp(`^/${SEGMENT}$`), new RegExp(`^//${DOMAIN}/${SEGMENT}$`)],
  DEVICE: [
    /^[0-2](?:\.(?:0|[1-9][0-9]{0,9})){2,30}$/,
    /^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+,.:=@;$_!*'%/-]{1,200}$/,
  ],
  GATEWAY: [],
}

/** Throws ERR_INVALID_ARGUMENT unless `id` has one of the forms of `kind`. */
export function validateEntityId(kind: EntityKind, id: string): void {
  const forms = kind === 'GATEWAY' ? FORMS.DEVICE : FORMS[kind]
  if (typeof id !== 'string' || id.length > LIMITS.entityIdChars || !forms.some((re) => re.test(id))) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `entity id is not a valid oneM2M ${kind} identifier`, {
      field: 'entity_id',
      kind,
    })
  }
}
