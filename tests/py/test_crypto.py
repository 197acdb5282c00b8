"""RS256 and ES256 verification and JWK parsing in SQL, against the ``cryptography`` package.

Fresh random keys every run: RSA of 2048 and 3072 bits with the exponents 65537 and 3 (and one
of 2055 bits), P-256 keys, and the P-256 keys whose evaluation takes the rare paths of
tenancy.es256_verify (Q = G, Q = -G, 2G, -2G). Each key goes through tenancy.jwk_key_material
as a JWK; every signature made by ``cryptography`` verifies, and every single-bit change of the
signature or the message is refused. Property tests feed arbitrary bytes as signatures and
arbitrary JSON as JWKs: the verifiers answer false, the parser returns a key or raises 22023,
and nothing else ever happens.

The functions are internal (no pgtenancy role may call them): the superuser connection calls them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

RSA_SQL = (
    "select tenancy.rsa_sha256_verify(k.modulus, k.exponent, k.modulus_bytes, %s, %s) "
    "from tenancy.jwk_key_material(%s) as k"
)
ES_SQL = "select tenancy.es256_verify(k.x, k.y, %s, %s) from tenancy.jwk_key_material(%s) as k"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or (value.bit_length() + 7) // 8, "big")


def rsa_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": "rsa",
        "alg": "RS256",
        "n": b64(uint(numbers.n)),
        "e": b64(uint(numbers.e)),
    }


def ec_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": "ec",
        "crv": "P-256",
        "x": b64(uint(numbers.x, 32)),
        "y": b64(uint(numbers.y, 32)),
    }


def es_sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return uint(r, 32) + uint(s, 32)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


@pytest.fixture(scope="module")
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def verify(
    conn: psycopg.Connection[Any], sql: str, jwk: dict[str, Any], message: bytes, sig: bytes
) -> Any:
    row = conn.execute(sql, (message, sig, Jsonb(jwk))).fetchone()
    assert row is not None
    return row[0]


def some_bits(length: int, rng: random.Random, count: int = 12) -> list[int]:
    """The first and last bits, and random ones between."""
    return sorted({0, length * 8 - 1, *rng.sample(range(length * 8), count)})


@pytest.mark.parametrize(
    ("bits", "exponent"),
    # 2055 bits: a modulus that is not a whole number of bytes (257 bytes)
    [(2048, 65537), (3072, 65537), (2048, 3), (3072, 3), (2055, 65537)],
)
def test_rs256_signatures_of_fresh_keys(
    conn: psycopg.Connection[Any], bits: int, exponent: int
) -> None:
    rng = random.Random()
    key = rsa.generate_private_key(exponent, bits)
    jwk = rsa_jwk(key)
    row = conn.execute(
        "select modulus, exponent, modulus_bytes from tenancy.jwk_key_material(%s)", (Jsonb(jwk),)
    ).fetchone()
    numbers = key.public_key().public_numbers()
    assert row == (numbers.n, numbers.e, (numbers.n.bit_length() + 7) // 8)
    for length in (0, 1, 43, 1000):
        message = os.urandom(length)
        sig = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        assert verify(conn, RSA_SQL, jwk, message, sig) is True
        for bit in some_bits(len(sig), rng):
            assert verify(conn, RSA_SQL, jwk, message, flip(sig, bit)) is False, bit
        if message:
            for bit in some_bits(len(message), rng, min(4, len(message) * 8 - 2)):
                assert verify(conn, RSA_SQL, jwk, flip(message, bit), sig) is False, bit


def test_es256_signatures_of_fresh_keys(conn: psycopg.Connection[Any]) -> None:
    rng = random.Random()
    for _ in range(3):
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = ec_jwk(key)
        numbers = key.public_key().public_numbers()
        row = conn.execute(
            "select x, y from tenancy.jwk_key_material(%s)", (Jsonb(jwk),)
        ).fetchone()
        assert row == (numbers.x, numbers.y)
        for length in (0, 43, 500):
            message = os.urandom(length)
            sig = es_sign(key, message)
            assert verify(conn, ES_SQL, jwk, message, sig) is True
            # (r, n - s) is the other valid signature: accepted, as cryptography does.
            high = sig[:32] + uint(N - int.from_bytes(sig[32:], "big"), 32)
            assert verify(conn, ES_SQL, jwk, message, high) is True
            for bit in some_bits(64, rng, 8):
                assert verify(conn, ES_SQL, jwk, message, flip(sig, bit)) is False, bit
            if message:
                bit = rng.randrange(len(message) * 8)
                assert verify(conn, ES_SQL, jwk, flip(message, bit), sig) is False, bit


@pytest.mark.parametrize("d", [1, 2, N - 1, N - 2], ids=["G", "2G", "-G", "-2G"])
def test_es256_keys_on_the_rare_paths(conn: psycopg.Connection[Any], d: int) -> None:
    """Q = G or -G makes G + Q a doubling or the point at infinity; 2G and -2G make the
    accumulator meet the point added or its negative in about one signature in ten."""
    key = ec.derive_private_key(d, ec.SECP256R1())
    jwk = ec_jwk(key)
    for i in range(24):
        message = hashlib.sha256(str(i).encode()).digest()
        sig = es_sign(key, message)
        assert verify(conn, ES_SQL, jwk, message, sig) is True, i
        assert verify(conn, ES_SQL, jwk, message, flip(sig, i * 21 % 512)) is False, i


# -- property tests ------------------------------------------------------------------------------

RSA_KEY = rsa.generate_private_key(65537, 2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    message=st.binary(max_size=64),
    sig=st.one_of(st.binary(min_size=256, max_size=256), st.binary(max_size=300)),
)
def test_arbitrary_rsa_signatures_are_false(
    conn: psycopg.Connection[Any], message: bytes, sig: bytes
) -> None:
    assert verify(conn, RSA_SQL, rsa_jwk(RSA_KEY), message, sig) is False


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    message=st.binary(max_size=64),
    sig=st.one_of(st.binary(min_size=64, max_size=64), st.binary(max_size=80)),
)
def test_arbitrary_es256_signatures_are_false(
    conn: psycopg.Connection[Any], message: bytes, sig: bytes
) -> None:
    assert verify(conn, ES_SQL, ec_jwk(EC_KEY), message, sig) is False


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    modulus=st.one_of(st.integers(), st.integers(min_value=2**2047, max_value=2**2048 - 1)),
    exponent=st.one_of(st.integers(), st.sampled_from([3, 65537, 2**33 - 1])),
    modulus_bytes=st.one_of(st.integers(-(2**31), 2**31 - 1), st.just(256)),
    sig=st.binary(max_size=260),
)
def test_arbitrary_rsa_keys_are_false(
    conn: psycopg.Connection[Any], modulus: int, exponent: int, modulus_bytes: int, sig: bytes
) -> None:
    row = conn.execute(
        "select tenancy.rsa_sha256_verify(%s::numeric, %s::numeric, %s, 'm', %s)",
        (str(modulus), str(exponent), modulus_bytes, sig),
    ).fetchone()
    assert row == (False,)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=st.integers(), y=st.integers(), sig=st.binary(min_size=64, max_size=64))
def test_arbitrary_ec_keys_are_false(
    conn: psycopg.Connection[Any], x: int, y: int, sig: bytes
) -> None:
    row = conn.execute(
        "select tenancy.es256_verify(%s::numeric, %s::numeric, 'm', %s)", (str(x), str(y), sig)
    ).fetchone()
    assert row == (False,)


# JSON text PostgreSQL's jsonb accepts: no NUL character, no lone surrogate.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
B64 = st.one_of(
    st.binary(max_size=40).map(b64),
    st.sampled_from(
        [
            rsa_jwk(RSA_KEY)["n"],
            "AQAB",
            "AAEAAQ",
            "Aw",
            ec_jwk(EC_KEY)["x"],
            ec_jwk(EC_KEY)["y"],
            "AA",
            "",
            "AQAB=",
        ]
    ),
    TEXT,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
MEMBER_VALUES = {
    "kty": st.one_of(st.sampled_from(["RSA", "EC", "oct", "OKP", "rsa"]), JSON),
    "kid": st.one_of(TEXT, JSON),
    "use": st.one_of(st.sampled_from(["sig", "enc"]), JSON),
    "key_ops": st.one_of(
        st.lists(st.sampled_from(["verify", "sign", "encrypt"]), max_size=3), JSON
    ),
    "alg": st.one_of(st.sampled_from(["RS256", "ES256", "RS384", "none"]), JSON),
    "crv": st.one_of(st.sampled_from(["P-256", "P-384"]), JSON),
    "n": st.one_of(B64, JSON),
    "e": st.one_of(B64, JSON),
    "x": st.one_of(B64, JSON),
    "y": st.one_of(B64, JSON),
    "d": B64,
    "k": B64,
}
JWK = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional={name: values for name, values in MEMBER_VALUES.items()}),
    # a valid key with one member changed or removed
    st.tuples(
        st.sampled_from([rsa_jwk(RSA_KEY), ec_jwk(EC_KEY)]),
        st.sampled_from(sorted(MEMBER_VALUES)),
        st.one_of(st.none(), JSON, B64),
    ).map(lambda t: {k: v for k, v in {**t[0], t[1]: t[2]}.items() if v is not None or k != t[1]}),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(jwk=JWK)
def test_arbitrary_jwks_give_a_key_or_22023(conn: psycopg.Connection[Any], jwk: Any) -> None:
    try:
        rows = conn.execute(
            "select kty, alg, modulus, exponent, modulus_bytes, x, y "
            "from tenancy.jwk_key_material(%s)",
            (Jsonb(jwk),),
        ).fetchall()
    except psycopg.Error as error:
        assert error.sqlstate == "22023", (error.sqlstate, str(error))
        assert str(error).startswith("JWK "), str(error)
        return
    # Accepted: one row of material that the verifiers take, from a key that is what it says.
    assert len(rows) == 1
    kty, alg, modulus, exponent, modulus_bytes, x, y = rows[0]
    assert isinstance(jwk, dict) and jwk["kty"] == kty
    assert not {"d", "p", "q", "dp", "dq", "qi", "oth", "k"} & set(jwk)
    if kty == "RSA":
        assert alg == "RS256" and int(modulus).bit_length() >= 2048 and int(exponent) % 2 == 1
        assert modulus_bytes == (int(modulus).bit_length() + 7) // 8
    else:
        assert alg == "ES256" and jwk["crv"] == "P-256"
        ec.EllipticCurvePublicNumbers(int(x), int(y), ec.SECP256R1()).public_key()
