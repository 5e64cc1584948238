"""Independent JOSE peer for the interop tests: python3-jwcrypto (Debian, /usr/bin/python3).

Reads a JSON list of requests on stdin, writes the list of answers on stdout (one process
for many checks: jwcrypto takes ~0.1 s to import). Never prints key material.
  decrypt  {token, keys:[jwk]}                -> {ok, plaintext (base64url), header}
  verify   {token, key: jwk}                  -> {ok, payload (base64url), header}
  nested   {token, key: jwk, verify_key: jwk} -> decrypt, then verify the JWS inside
  encrypt  {plaintext, protected, recipients:[{jwk, header?}], compact} -> {ok, token}
  sign     {payload, signers:[{jwk, protected}], compact}              -> {ok, token}
"""
import base64
import json
import sys

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import json_decode


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key(d):
    return jwk.JWK(**d)


def decrypt(token, keys):
    last = None
    for k in keys:
        try:
            t = jwe.JWE()
            t.deserialize(token, key=key(k))
            return t.payload, t.jose_header
        except Exception as e:  # try the next key
            last = e
    raise last


def verify(token, k):
    s = jws.JWS()
    s.deserialize(token)
    s.verify(key(k))
    return s.payload, s.jose_header


def run(req):
    op = req["op"]
    if op == "decrypt":
        pt, h = decrypt(req["token"], req["keys"])
        return {"plaintext": b64(pt), "header": h}
    if op == "verify":
        pl, h = verify(req["token"], req["key"])
        return {"payload": b64(pl), "header": h}
    if op == "nested":
        inner, outer_h = decrypt(req["token"], [req["key"]])
        pl, inner_h = verify(inner.decode(), req["verify_key"])
        return {"payload": b64(pl), "header": outer_h, "inner_header": inner_h}
    if op == "encrypt":
        t = jwe.JWE(unb64(req["plaintext"]), protected=json.dumps(req["protected"]))
        for r in req["recipients"]:
            t.add_recipient(key(r["jwk"]), header=json.dumps(r["header"]) if "header" in r else None)
        return {"token": t.serialize(compact=req["compact"])}
    if op == "sign":
        s = jws.JWS(unb64(req["payload"]))
        for sg in req["signers"]:
            s.add_signature(key(sg["jwk"]), None, json.dumps(sg["protected"]))
        return {"token": s.serialize(compact=req["compact"])}
    raise ValueError("unknown op")


def answer(req):
    try:
        return {"ok": True, **run(req)}
    except Exception as e:  # the tests assert on ok, and on the error class name only
        return {"ok": False, "error": type(e).__name__}


def main():
    sys.stdout.write(json.dumps([answer(r) for r in json_decode(sys.stdin.read())]))


if __name__ == "__main__":
    main()
