"""Fixed tokens and JWKS for tests/pgtap/29-issuers.sql (trusted issuers, RS256/ES256, attacks).

Writes tests/pgtap/setup/issuer_tokens.psql: psql variables (\\set) with two tenants of fixed ids,
the JWKS of a platform issuer (RSA and EC keys, plus an encryption key that must be skipped), its
rotated JWKS, the JWKS of tenant B's own identity provider, and tokens minted with PyJWT (valid
until 2100) or built by hand for the attacks: alg none, HS256 signed with the RSA public key as
the secret, unknown kid, another tenant's kid, tampered claims, a repeated claim, a string exp,
a future nbf, an expired token, the wrong audience. Every valid token is checked here with
PyJWT before it is written.

Usage: .venv/bin/python tests/vectors/issuer_tokens.py   (new keys; the test reads the variables)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

OUT = Path(__file__).resolve().parents[1] / "pgtap" / "setup" / "issuer_tokens.psql"

TENANT_A = "a0a0a0a0-0000-4000-8000-00000000000a"
TENANT_B = "b0b0b0b0-0000-4000-8000-00000000000b"
ISSUER = "https://idp.pgtap.test/"
AUDIENCE = "https://api.pgtap.test"
ISSUER_B = "https://sso.tenant-b.pgtap.test"
AUDIENCE_B = "pgtap-b"
OWNER_A = "auth0|pgtap-owner-a"
USER_B = "okta|pgtap-user-b"
EXP = 4102444800  # 2100-01-01
IAT = 1700000000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any] | str, claims: dict[str, Any] | str, sign: Any) -> str:
    h = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    c = claims if isinstance(claims, str) else json.dumps(claims, separators=(",", ":"))
    signing_input = b64(h.encode()) + "." + b64(c.encode())
    return signing_input + "." + b64(sign(signing_input.encode()))


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    jwk = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(key)
        if isinstance(key, rsa.RSAPublicKey)
        else jwt.algorithms.ECAlgorithm.to_jwk(key)
    )
    jwk.update(kid=kid, use="sig", alg="RS256" if isinstance(key, rsa.RSAPublicKey) else "ES256")
    return jwk


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": OWNER_A,
        "tenant_id": TENANT_A,
        "iat": IAT,
        "exp": EXP,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def main() -> None:
    rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec1 = ec.generate_private_key(ec.SECP256R1())
    rsa_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    enc_jwk = jwk_of(enc.public_key(), "enc-1")
    enc_jwk.update(use="enc", alg="RSA-OAEP")
    jwks = {"keys": [jwk_of(rsa1.public_key(), "rsa-1"), jwk_of(ec1.public_key(), "ec-1"), enc_jwk]}
    jwks_rotated = {"keys": [jwk_of(rsa2.public_key(), "rsa-2"), jwk_of(ec1.public_key(), "ec-1")]}
    jwks_b = {"keys": [jwk_of(rsa_b.public_key(), "b-1")]}

    def rs(key: Any, kid: str, **changes: Any) -> str:
        return jwt.encode(claims(**changes), key, algorithm="RS256", headers={"kid": kid})

    def raw_rs(key: Any, header: dict[str, Any] | str, body: dict[str, Any] | str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return compact(header, body, lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA256()))

    rs_good = rs(rsa1, "rsa-1")
    es_good = jwt.encode(claims(), ec1, algorithm="ES256", headers={"kid": "ec-1"})
    public_pem = rsa1.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT refuses to use a PEM public key as an HMAC secret: the confusion is built by hand.
    hs_confusion = compact(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        claims(),
        lambda m: hmac.new(public_pem, m, hashlib.sha256).digest(),
    )
    header_good, body_good, sig_good = rs_good.split(".")
    tampered = json.dumps(claims(sub="auth0|someone-else"), separators=(",", ":"))
    tampered_body = b64(tampered.encode())
    tokens = {
        "rs_good": rs_good,
        "es_good": es_good,
        "rs_host": rs(rsa1, "rsa-1", tenant_id=None),
        "rs_rotated": rs(rsa2, "rsa-2"),
        "rs_wrong_aud": rs(rsa1, "rsa-1", aud="https://other.api.test"),
        "rs_aud_list": rs(rsa1, "rsa-1", aud=["https://other.api.test", AUDIENCE]),
        "rs_expired": rs(rsa1, "rsa-1", exp=IAT + 100),
        "rs_nbf_future": rs(rsa1, "rsa-1", nbf=EXP - 10),
        "rs_unknown_kid": rs(rsa1, "rsa-9"),
        "rs_no_kid": jwt.encode(claims(), rsa1, algorithm="RS256"),
        "rs_kid_of_b": rs(rsa_b, "b-1"),
        "rs_other_tenant": rs(rsa1, "rsa-1", tenant_id=TENANT_B),
        "rs_untrusted_iss": rs(rsa1, "rsa-1", iss="https://evil.pgtap.test/"),
        "rs_tampered": f"{header_good}.{tampered_body}.{sig_good}",
        "hs_confusion": hs_confusion,
        "rs_signed_by_ec_key_kid": compact(
            {"alg": "RS256", "typ": "JWT", "kid": "ec-1"},
            claims(),
            lambda m: b"\x00" * 256,
        ),
        "rs_dup_sub": raw_rs(
            rsa1,
            {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"},
            json.dumps(claims(sub="auth0|someone-else"), separators=(",", ":"))[:-1]
            + f',"sub":"{OWNER_A}"}}',
        ),
        "rs_exp_string": raw_rs(
            rsa1,
            {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"},
            claims(exp=str(EXP)),
        ),
        "alg_none": b64(b'{"alg":"none","typ":"JWT"}')
        + "."
        + b64(json.dumps(claims(), separators=(",", ":")).encode())
        + ".",
        "ps256": jwt.encode(claims(), rsa1, algorithm="PS256", headers={"kid": "rsa-1"}),
        "byo_b": jwt.encode(
            {"iss": ISSUER_B, "aud": AUDIENCE_B, "sub": USER_B, "iat": IAT, "exp": EXP},
            rsa_b,
            algorithm="RS256",
            headers={"kid": "b-1"},
        ),
        "byo_b_claims_a": jwt.encode(
            {
                "iss": ISSUER_B,
                "aud": AUDIENCE_B,
                "sub": USER_B,
                "tenant_id": TENANT_A,
                "iat": IAT,
                "exp": EXP,
            },
            rsa_b,
            algorithm="RS256",
            headers={"kid": "b-1"},
        ),
    }
    # The valid ones verify with PyJWT; the others are checked by the pgTAP file.
    for name in ("rs_good", "rs_host", "rs_aud_list"):
        jwt.decode(tokens[name], rsa1.public_key(), algorithms=["RS256"], audience=AUDIENCE)
    jwt.decode(tokens["es_good"], ec1.public_key(), algorithms=["ES256"], audience=AUDIENCE)
    jwt.decode(tokens["rs_rotated"], rsa2.public_key(), algorithms=["RS256"], audience=AUDIENCE)
    jwt.decode(tokens["byo_b"], rsa_b.public_key(), algorithms=["RS256"], audience=AUDIENCE_B)

    lines = [
        "-- Written by tests/vectors/issuer_tokens.py: do not edit (run it again for new keys).",
        f"\\set tenant_a '{TENANT_A}'",
        f"\\set tenant_b '{TENANT_B}'",
        f"\\set issuer '{ISSUER}'",
        f"\\set audience '{AUDIENCE}'",
        f"\\set issuer_b '{ISSUER_B}'",
        f"\\set audience_b '{AUDIENCE_B}'",
        f"\\set owner_a '{OWNER_A}'",
        f"\\set user_b '{USER_B}'",
        f"\\set jwks '{json.dumps(jwks)}'",
        f"\\set jwks_rotated '{json.dumps(jwks_rotated)}'",
        f"\\set jwks_b '{json.dumps(jwks_b)}'",
    ]
    lines += [f"\\set {name} '{token}'" for name, token in tokens.items()]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
