"""Fixed test vectors for tenancy.rsa_sha256_verify, es256_verify and jwk_key_material.

Writes tests/pgtap/setup/crypto_vectors.psql: psql variables (\\set) read by
tests/pgtap/25-crypto.sql. Keys and signatures come from ``cryptography``; the deliberately wrong
RSA encodings are signed with the private key by raw exponentiation (m^d mod n), so that only the
encoding is wrong. Every vector is checked here against ``cryptography``'s own verifier before it
is written (a valid one verifies, a refused one does not).

The ES256 keys include the edge cases of the SQL implementation: Q = G and Q = -G (the sum G + Q
precomputed by Shamir's trick is a doubling or the point at infinity), a signature whose
evaluation meets the accumulator equal to the point added (a doubling inside the addition) and
one where they cancel (the point at infinity mid-way), a key made so that x(R) = r + n (the
second branch of the final comparison), and a key made so that u1 G + u2 Q is the point at
infinity (refused).

Usage: .venv/bin/python tests/vectors/crypto_vectors.py   (new random keys: the test file reads
only the variables, so it needs no change)
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

OUT = Path(__file__).resolve().parents[1] / "pgtap" / "setup" / "crypto_vectors.psql"
MESSAGE = b"eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJhdXRoMHx2ZWN0b3IifQ"

# P-256 (FIPS 186-4 D.1.2.3)
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)

SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
SHA1_PREFIX = bytes.fromhex("3021300906052b0e03021a05000414")
SHA256_NO_NULL = bytes.fromhex("302f300b0609608648016503040201" + "0420")

Point = tuple[int, int] | None


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big")


# -- P-256 in affine coordinates (None: the point at infinity) ---------------------------------


def ec_add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return x, (lam * (a[0] - x) - a[1]) % P


def ec_mul(k: int, point: Point) -> Point:
    result: Point = None
    for bit in bin(k % N)[2:]:
        result = ec_add(result, result)
        if bit == "1":
            result = ec_add(result, point)
    return result


def ec_neg(point: Point) -> Point:
    return None if point is None else (point[0], (-point[1]) % P)


def shamir_events(u1: int, u2: int, q: Point) -> set[str]:
    """The special cases the SQL loop meets for u1 G + u2 Q (same bit order, same table)."""
    table = {(1, 0): G, (0, 1): q, (1, 1): ec_add(G, q)}
    acc: Point = None
    events = set()
    for i in range(255, -1, -1):
        acc = ec_add(acc, acc)
        bits = ((u1 >> i) & 1, (u2 >> i) & 1)
        if bits == (0, 0):
            continue
        point = table[bits]
        if acc is not None and point is not None:
            if acc == point:
                events.add("doubling in addition")
            elif acc == ec_neg(point):
                events.add("infinity in addition")
        acc = ec_add(acc, point)
    return events


def ecdsa_scalars(message: bytes, signature: bytes) -> tuple[int, int, int, int]:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, N)
    return r, s, e * w % N, r * w % N


def es256_sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return uint(r, 32) + uint(s, 32)


def es256_valid(point: tuple[int, int], message: bytes, signature: bytes) -> bool:
    public = ec.EllipticCurvePublicNumbers(point[0], point[1], ec.SECP256R1()).public_key()
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def rs256_valid(key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


class Vectors:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def set(self, name: str, value: str | int) -> None:
        text = str(value)
        assert "'" not in text and "\\" not in text, name
        self.lines.append(f"\\set {name} '{text}'")

    def comment(self, text: str) -> None:
        self.lines.append(f"-- {text}")


def rsa_vectors(out: Vectors) -> None:
    keys = {
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "rsa4096": rsa.generate_private_key(65537, 4096),
        "rsa2048e3": rsa.generate_private_key(3, 2048),
        "rsa1024": rsa.generate_private_key(65537, 1024),
    }
    out.comment("RSA keys (n, e, bytes; base64url n64, e64) and RS256 signatures of :message")
    out.set("message", MESSAGE.decode())
    for name, key in keys.items():
        numbers = key.public_key().public_numbers()
        k = (numbers.n.bit_length() + 7) // 8
        signature = key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        assert rs256_valid(key.public_key(), MESSAGE, signature)
        out.set(f"{name}_n", numbers.n)
        out.set(f"{name}_e", numbers.e)
        out.set(f"{name}_k", k)
        out.set(f"{name}_n64", b64(uint(numbers.n)))
        out.set(f"{name}_e64", b64(uint(numbers.e)))
        out.set(f"{name}_sig", signature.hex())

    key = keys["rsa2048"]
    public = key.public_key()
    n, d = public.public_numbers().n, key.private_numbers().d
    k = 256

    def raw(encoded: bytes) -> bytes:
        """m^d mod n: a signature of exactly these k bytes, whatever they hold."""
        assert len(encoded) == k
        return uint(pow(int.from_bytes(encoded, "big"), d, n), k)

    sha256 = hashlib.sha256(MESSAGE).digest()
    right = b"\x00\x01" + b"\xff" * (k - 54) + b"\x00" + SHA256_PREFIX + sha256
    assert raw(right) == bytes.fromhex(
        key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256()).hex()
    ), "PKCS#1 v1.5 signatures are deterministic: raw m^d of the right encoding is the signature"

    t1 = SHA1_PREFIX + hashlib.sha1(MESSAGE).digest()
    wrong: dict[str, tuple[str, bytes]] = {
        "sha1": (
            "SHA-1 DigestInfo and hash",
            b"\x00\x01" + b"\xff" * (k - 3 - len(t1)) + b"\x00" + t1,
        ),
        "sha256_prefix_sha1_hash": (
            "the SHA-256 DigestInfo over a SHA-1 hash",
            b"\x00\x01"
            + b"\xff" * (k - 3 - 19 - 20)
            + b"\x00"
            + SHA256_PREFIX[:-1]
            + b"\x14"
            + hashlib.sha1(MESSAGE).digest(),
        ),
        "no_null": (
            "the DigestInfo without its NULL parameters",
            b"\x00\x01" + b"\xff" * (k - 3 - 49) + b"\x00" + SHA256_NO_NULL + sha256,
        ),
        "short_ff": (
            "one FF byte missing (a leading zero instead)",
            b"\x00\x00\x01" + b"\xff" * (k - 55) + b"\x00" + SHA256_PREFIX + sha256,
        ),
        "garbage": (
            "eight FF bytes, then the DigestInfo and hash, then garbage (Bleichenbacher 2006)",
            (
                b"\x00\x01"
                + b"\xff" * 8
                + b"\x00"
                + SHA256_PREFIX
                + sha256
                + bytes(range(256))[: k - 11 - 51]
            ),
        ),
        "block_type_2": (
            "block type 02 instead of 01",
            b"\x00\x02" + b"\xff" * (k - 54) + b"\x00" + SHA256_PREFIX + sha256,
        ),
        "no_separator": (
            "no zero byte between the FF bytes and the DigestInfo",
            b"\x00\x01" + b"\xff" * (k - 53) + SHA256_PREFIX + sha256,
        ),
        "trailing_zero": (
            "the DigestInfo and hash shifted one byte left, a zero byte after them",
            b"\x00\x01" + b"\xff" * (k - 55) + b"\x00" + SHA256_PREFIX + sha256 + b"\x00",
        ),
        "other_hash": (
            "the right layout over the hash of another message",
            b"\x00\x01"
            + b"\xff" * (k - 54)
            + b"\x00"
            + SHA256_PREFIX
            + hashlib.sha256(MESSAGE + b".").digest(),
        ),
    }
    out.comment("rsa2048 private key over wrong encodings (raw m^d mod n): each must be refused")
    for name, (what, encoded) in wrong.items():
        signature = raw(encoded)
        assert not rs256_valid(public, MESSAGE, signature), name
        out.comment(f"rsa2048_bad_{name}: {what}")
        out.set(f"rsa2048_bad_{name}", signature.hex())

    other = rsa.generate_private_key(65537, 2048)
    signature = other.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert not rs256_valid(public, MESSAGE, signature)
    out.comment("a valid RS256 signature of the message by another 2048-bit key")
    out.set("rsa2048_other_key_sig", signature.hex())

    out.comment("JWK spellings of rsa2048's modulus")
    modulus = uint(n)
    out.set(
        "rsa2048_n64_zero", b64(b"\x00" + modulus)
    )  # the one leading zero RFC 7518 6.3.1.1 tolerates
    out.set("rsa2048_n64_zeros", b64(b"\x00\x00" + modulus))
    out.set("rsa2048_n64_even", b64(uint(n - 1)))
    # 256 bytes: 342 characters, the last carrying 4 unused bits; set the lowest.
    text = b64(modulus)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    out.set("rsa2048_n64_bits", text[:-1] + alphabet[alphabet.index(text[-1]) | 1])
    small = uint(int.from_bytes(modulus[:-1], "big") | 1)  # 2,040 bits, odd: too short
    out.set("rsa2040_n64", b64(small))
    out.set("rsa16392_n64", b64(b"\xc3" + bytes(2047) + b"\x01"))  # 2,049 bytes: too long


def ec_vectors(out: Vectors) -> None:
    out.comment("ES256 keys (x, y; base64url x64, y64) and signatures (r || s) of the message")
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    q = (numbers.x, numbers.y)
    signature = es256_sign(key, MESSAGE)
    assert es256_valid(q, MESSAGE, signature)
    out.set("ec_x", q[0])
    out.set("ec_y", q[1])
    out.set("ec_x64", b64(uint(q[0], 32)))
    out.set("ec_y64", b64(uint(q[1], 32)))
    out.set("ec_sig", signature.hex())
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    high_s = uint(r, 32) + uint(N - s, 32)
    assert es256_valid(q, MESSAGE, high_s)
    out.comment("(r, n - s): the other valid signature ECDSA always has (JWS does not forbid it)")
    out.set("ec_sig_high_s", high_s.hex())
    other = ec.generate_private_key(ec.SECP256R1())
    out.comment("a valid signature of the message by another key")
    out.set("ec_other_key_sig", es256_sign(other, MESSAGE).hex())
    out.comment("r and s as numbers, n, p, for signatures built in SQL")
    out.set("ec_r", r)
    out.set("ec_s", s)
    out.set("p256_n", N)
    out.set("p256_p", P)

    def find(d: int, wanted: str | None) -> tuple[tuple[int, int], bytes]:
        private = ec.derive_private_key(d, ec.SECP256R1())
        point = ec_mul(d, G)
        assert point is not None
        for _ in range(2000):
            signature = es256_sign(private, MESSAGE)
            _, _, u1, u2 = ecdsa_scalars(MESSAGE, signature)
            if wanted is None or wanted in shamir_events(u1, u2, point):
                assert es256_valid(point, MESSAGE, signature)
                return point, signature
        raise SystemExit(f"no signature met {wanted!r} for d = {d}")

    cases: dict[str, tuple[int, str | None, str]] = {
        "ec_g": (1, None, "Q = G: G + Q is the doubling 2G"),
        "ec_neg_g": (N - 1, None, "Q = -G: G + Q is the point at infinity"),
        "ec_2g": (2, "doubling in addition", "Q = 2G, the accumulator equal to the point added"),
        "ec_neg_2g": (
            N - 2,
            "infinity in addition",
            "Q = -2G, the accumulator minus the point added",
        ),
    }
    for name, (d, wanted, what) in cases.items():
        point, signature = find(d, wanted)
        out.comment(f"{name}: {what}")
        out.set(f"{name}_x", point[0])
        out.set(f"{name}_y", point[1])
        out.set(f"{name}_sig", signature.hex())

    e = int.from_bytes(hashlib.sha256(MESSAGE).digest(), "big")
    # x(R) = r + n: a point R with x >= n (below p), then Q = (R - u1 G) / u2 for chosen s.
    x = N + 1
    while True:
        rhs = (x * x * x - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            break
        x += 1
    r, s = x - N, 0x1234567890ABCDEF
    u1, u2 = e * pow(s, -1, N) % N, r * pow(s, -1, N) % N
    point = ec_mul(pow(u2, -1, N), ec_add((x, y), ec_neg(ec_mul(u1, G))))
    assert point is not None
    signature = uint(r, 32) + uint(s, 32)
    assert es256_valid(point, MESSAGE, signature)
    out.comment("ec_rn: a key for which the signature's R has x(R) = r + n (valid)")
    out.set("ec_rn_x", point[0])
    out.set("ec_rn_y", point[1])
    out.set("ec_rn_sig", signature.hex())

    # u1 G + u2 Q = O: Q = dG with d = -e / r.
    r, s = 0x0FEDCBA987654321, 0x1122334455667788
    point = ec_mul((-e) * pow(r, -1, N) % N, G)
    assert point is not None
    signature = uint(r, 32) + uint(s, 32)
    assert not es256_valid(point, MESSAGE, signature)
    out.comment("ec_inf: a key for which u1 G + u2 Q is the point at infinity (refused)")
    out.set("ec_inf_x", point[0])
    out.set("ec_inf_y", point[1])
    out.set("ec_inf_sig", signature.hex())

    out.comment("JWK spellings of EC coordinates")
    out.set("ec_x64_short", b64(uint(q[0], 32)[1:]))
    out.set("ec_y64_long", b64(b"\x00" + uint(q[1], 32)))
    out.set("ec_p64", b64(uint(P, 32)))
    out.set("ec_y64_off", b64(uint((q[1] + 1) % P, 32)))


def main() -> int:
    out = Vectors()
    out.lines.append("-- Test vectors for tests/pgtap/25-crypto.sql, generated by")
    out.lines.append("-- tests/vectors/crypto_vectors.py (random keys: run it again for new ones).")
    out.lines.append("-- Not a test itself (pg_prove runs *.sql only).")
    steps: list[Callable[[Vectors], None]] = [rsa_vectors, ec_vectors]
    for step in steps:
        step(out)
    OUT.write_text("\n".join(out.lines) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
