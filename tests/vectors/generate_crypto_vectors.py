"""Regenerate the crypto test vectors under tests/vectors/{canonical,signatures,envelope}/.

Run from the repository root::

    python tests/vectors/generate_crypto_vectors.py [OUTPUT_DIR]

OUTPUT_DIR defaults to this file's folder. The output is deterministic: keys come from
fixed seeds and the envelope's randomness is injected, so a re-run rewrites identical
files unless the cases below or the code under test changed.

Expected results are written out by hand here, never read back from the code under
test: before writing anything the script checks that the code agrees with every case
and exits non-zero, writing nothing, if it does not. Layout follows
transparency-dev/merkle: one case per file, a happy path plus deliberately broken copies
marked ``"wantErr": true``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from healthledger.crypto.canonical import canonical_json, is_canonical, parse_canonical
from healthledger.crypto.envelope import (
    Sealed,
    VaultKey,
    WrappedKey,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from healthledger.crypto.errors import (
    CanonicalEncodingError,
    DecryptionError,
    SignatureError,
)
from healthledger.crypto.keys import SigningKey, decode_b64, verify_signature

Case = dict[str, Any]

# --------------------------------------------------------------------------- helpers


def _fixed(label: str, size: int = 32) -> bytes:
    """Fixed bytes named by ``label``: reproducible, and obviously not a real key."""
    return hashlib.sha256(b"healthledger/test-vectors/" + label.encode("ascii")).digest()[:size]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _flip(data: bytes, byte: int, bit: int) -> bytes:
    out = bytearray(data)
    out[byte] ^= 1 << bit
    return bytes(out)


def _flip_b64(text: str, byte: int, bit: int) -> str:
    data = base64.b64decode(text)
    return _b64(_flip(data, byte % len(data), bit))


# ------------------------------------------------------------------ canonical JSON

_SHORT_ESCAPES = {0x08: r"\b", 0x09: r"\t", 0x0A: r"\n", 0x0C: r"\f", 0x0D: r"\r"}

# RFC 8785 section 3.2.2: the example with its numbers removed (the profile has no
# floats), then the whole example, which the profile must refuse.
_RFC8785_322_NO_NUMBERS = r"""{
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
_RFC8785_322_NO_NUMBERS_CANONICAL = (
    r"""{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"""
)
_RFC8785_322_FULL = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
# RFC 8785 section 3.2.3 (sorting): most keys are non-ASCII, which the profile refuses;
# its two ASCII keys make a valid case on their own.
_RFC8785_323_FULL = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""


def _valid(description: str, input_json: str, canonical: str) -> Case:
    return {"description": description, "input_json": input_json, "canonical": canonical}


def _invalid(description: str, input_json: str) -> Case:
    return {"description": description, "input_json": input_json, "wantErr": True}


def canonical_cases() -> dict[str, Case]:
    """Every canonical-JSON case, by file name."""
    all_controls_in = '"' + "".join(f"\\u{c:04X}" for c in range(0x20)) + '"'
    all_controls_out = (
        '"' + "".join(_SHORT_ESCAPES.get(c, f"\\u{c:04x}") for c in range(0x20)) + '"'
    )
    deep64_array = "[" * 64 + "0" + "]" * 64
    deep64_object = '{"a":' * 64 + "0" + "}" * 64
    return {
        # keys
        "sort-keys-flat": _valid(
            "object keys are sorted", '{"b":1,"a":2,"c":3}', '{"a":2,"b":1,"c":3}'
        ),
        "sort-keys-nested": _valid(
            "keys are sorted at every level, inside arrays too; arrays keep their order",
            '{"z":{"y":[{"d":1,"c":2}],"x":null},"a":{"b":{"d":0,"c":0}}}',
            '{"a":{"b":{"c":0,"d":0}},"z":{"x":null,"y":[{"c":2,"d":1}]}}',
        ),
        "sort-keys-case": _valid(
            "upper-case letters sort before lower-case (code point order, not locale)",
            '{"b":1,"a":2,"B":3,"A":4}',
            '{"A":4,"B":3,"a":2,"b":1}',
        ),
        "sort-keys-digits-punctuation-letters": _valid(
            "space < '-' < digits < upper case < '_' < lower case; '10' sorts before '2'",
            '{"a":1,"_":2,"Z":3,"10":4,"2":5,"1":6,"-":7," ":8}',
            '{" ":8,"-":7,"1":6,"10":4,"2":5,"Z":3,"_":2,"a":1}',
        ),
        "sort-keys-prefix": _valid(
            "a key sorts before the keys it is a prefix of; the empty key comes first",
            '{"ab":1,"a":2,"":3}',
            '{"":3,"a":2,"ab":1}',
        ),
        "sort-keys-escaped-input": _valid(
            "keys are sorted by their decoded value, not their escaped spelling",
            r'{"\u0062":1,"\u0061":2}',
            '{"a":2,"b":1}',
        ),
        "sort-keys-control-chars": _valid(
            "ASCII control characters are allowed in keys and sort by code point",
            r'{"\u001f":2,"\n":3,"\u0000":1}',
            r'{"\u0000":1,"\n":3,"\u001f":2}',
        ),
        "array-order-kept": _valid("array elements keep their order", "[3,1,2]", "[3,1,2]"),
        # whitespace
        "whitespace-removed": _valid(
            "insignificant whitespace (space, tab, CR, LF) goes; whitespace in strings stays",
            ' \n\t{ "a" : [ 1 , 2 , { } ] ,\r\n "b" : "x y" }\n ',
            '{"a":[1,2,{}],"b":"x y"}',
        ),
        # strings
        "string-quote-backslash": _valid(
            "quote and backslash are escaped", r'"a\"b\\c"', r'"a\"b\\c"'
        ),
        "string-solidus-unescaped": _valid(
            "an escaped solidus comes out unescaped", r'"\/a/b"', '"/a/b"'
        ),
        "string-control-short-escapes": _valid(
            "backspace, tab, LF, FF and CR use their two-character escapes",
            r'"\u0008\u0009\u000A\u000C\u000D"',
            r'"\b\t\n\f\r"',
        ),
        "string-control-all": _valid(
            "every control character U+0000..U+001F: short escapes where JSON has one, "
            "otherwise \\u00XX with lower-case hex",
            all_controls_in,
            all_controls_out,
        ),
        "string-del-unescaped": _valid(
            "DEL (U+007F) is not a JSON control character and comes out raw",
            r'"\u007f"',
            '"\x7f"',
        ),
        "string-non-ascii-escaped-input": _valid(
            "escaped non-ASCII text comes out as raw UTF-8",
            r'"\u00e9t\u00e9 \u4e2d\u6587"',
            '"été 中文"',
        ),
        "string-non-ascii-raw-input": _valid(
            "raw non-ASCII text in values is kept as UTF-8", '"été 中文"', '"été 中文"'
        ),
        "string-upper-case-hex-escape": _valid(
            "upper-case hex escapes are accepted and decoded", r'"\u00C9"', '"É"'
        ),
        "string-emoji-escaped-pair": _valid(
            "a UTF-16 surrogate pair escape becomes one astral character, raw UTF-8",
            r'"\ud83d\ude00"',
            '"\U0001f600"',
        ),
        "string-emoji-raw": _valid(
            "raw astral characters are kept", '"\U0001f600\U0001fa7a"', '"\U0001f600\U0001fa7a"'
        ),
        "string-line-separators-raw": _valid(
            "U+2028 and U+2029 are not escaped (RFC 8785 escapes only what JSON requires)",
            r'"\u2028\u2029"',
            '"\u2028\u2029"',
        ),
        "string-bom-character-in-value": _valid(
            "U+FEFF inside a string is an ordinary character",
            r'"\ufeff"',
            '"\ufeff"',
        ),
        # numbers and literals
        "int-zero": _valid("zero", "0", "0"),
        "int-minus-zero": _valid("-0 is the integer 0 and is written 0", "-0", "0"),
        "int-max-safe": _valid(
            "2**53 - 1, the largest integer allowed", "9007199254740991", "9007199254740991"
        ),
        "int-min-safe": _valid(
            "-(2**53 - 1), the smallest integer allowed", "-9007199254740991", "-9007199254740991"
        ),
        "int-in-object": _valid(
            "integers in an object", '{"n":-42,"m":1000000}', '{"m":1000000,"n":-42}'
        ),
        "literals": _valid("true, false and null", "[ true , false , null ]", "[true,false,null]"),
        "top-level-null": _valid("a top-level literal", " null ", "null"),
        "top-level-string": _valid("a top-level string", ' "x" ', '"x"'),
        "empty-object": _valid("empty object", "{ }", "{}"),
        "empty-array": _valid("empty array", "[ ]", "[]"),
        "empty-string": _valid("empty string", '""', '""'),
        "empty-containers-nested": _valid(
            "empty containers as values", '{"c":"","b":[],"a":{}}', '{"a":{},"b":[],"c":""}'
        ),
        "nesting-64-arrays": _valid(
            "64 nested arrays: the deepest allowed", deep64_array, deep64_array
        ),
        "nesting-64-objects": _valid(
            "64 nested objects: the deepest allowed", deep64_object, deep64_object
        ),
        # RFC 8785 and its reference implementation's test data
        "rfc8785-3.2.2-without-numbers": _valid(
            "RFC 8785 section 3.2.2 example without its floating-point 'numbers' member",
            _RFC8785_322_NO_NUMBERS,
            _RFC8785_322_NO_NUMBERS_CANONICAL,
        ),
        "rfc8785-3.2.2-full": _invalid(
            "RFC 8785 section 3.2.2 example as published: its floats are outside the profile",
            _RFC8785_322_FULL,
        ),
        "rfc8785-3.2.3-ascii-keys": _valid(
            "RFC 8785 section 3.2.3 sorting example, its ASCII keys only",
            '{\n  "1": "One",\n  "\\r": "Carriage Return"\n}',
            r'{"\r":"Carriage Return","1":"One"}',
        ),
        "rfc8785-3.2.3-full": _invalid(
            "RFC 8785 section 3.2.3 sorting example as published: non-ASCII keys are "
            "outside the profile",
            _RFC8785_323_FULL,
        ),
        "rfc8785-appendix-b-zero": _valid("RFC 8785 appendix B: zero", "0", "0"),
        "rfc8785-appendix-b-minus-zero": _valid(
            "RFC 8785 appendix B: minus zero is written 0", "-0", "0"
        ),
        "rfc8785-appendix-b-2-53": _invalid(
            "RFC 8785 appendix B 'max pos int' 2**53: representable in JCS, but outside the "
            "profile's +-(2**53 - 1)",
            "9007199254740992",
        ),
        "rfc8785-appendix-b-minus-2-53": _invalid(
            "RFC 8785 appendix B 'max neg int' -(2**53): outside the profile",
            "-9007199254740992",
        ),
        "rfc8785-appendix-b-2-68": _invalid(
            "RFC 8785 appendix B ~2**68: outside the profile", "295147905179352830000"
        ),
        "jcs-testdata-arrays": _valid(
            "JCS reference implementation test data 'arrays' (integers only)",
            '[\n  56,\n  {\n    "d": true,\n    "10": null,\n    "1": [ ]\n  }\n]',
            '[56,{"1":[],"10":null,"d":true}]',
        ),
        "jcs-testdata-structures": _invalid(
            "JCS reference implementation test data 'structures': 56.0 is a float",
            '{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n'
            '  "a": { },\n  "111": [ { } ],\n  "A": { }\n}',
        ),
        # floats and non-finite numbers
        "float-one-point-zero": _invalid("1.0 is a float even though it is integral", "1.0"),
        "float-exponent": _invalid("1e3 is a float", "1e3"),
        "float-exponent-upper": _invalid("1E3 is a float", "1E3"),
        "float-exponent-zero": _invalid("1e0 is a float", "1e0"),
        "float-half": _invalid("0.5", "0.5"),
        "float-minus-zero": _invalid("-0.0 is a float", "-0.0"),
        "float-nested": _invalid("a float deep inside an object", '{"a":[1,{"b":0.5}]}'),
        "nan": _invalid("NaN is not JSON", "NaN"),
        "nan-in-array": _invalid("NaN inside an array", "[1,NaN]"),
        "infinity": _invalid("Infinity is not JSON", "Infinity"),
        "minus-infinity": _invalid("-Infinity is not JSON", '{"a":-Infinity}'),
        # integers out of range or malformed
        "int-2-53": _invalid("2**53 is outside +-(2**53 - 1)", "9007199254740992"),
        "int-minus-2-53": _invalid("-(2**53) is outside +-(2**53 - 1)", "-9007199254740992"),
        "int-huge": _invalid("a 31-digit integer", "1" + "0" * 30),
        "int-leading-zero": _invalid("leading zeros are not JSON", "01"),
        "int-plus-sign": _invalid("a plus sign is not JSON", "+1"),
        "int-hex": _invalid("hex literals are not JSON", "0x10"),
        # keys
        "key-non-ascii-escaped": _invalid("non-ASCII object key (escaped)", r'{"\u00e9":1}'),
        "key-non-ascii-raw": _invalid("non-ASCII object key (raw UTF-8)", '{"é":1}'),
        "key-emoji": _invalid("astral object key", r'{"\ud83d\ude00":1}'),
        "key-non-ascii-nested": _invalid("non-ASCII key in a nested object", '{"a":[{"ü":1}]}'),
        "duplicate-key-same-value": _invalid("duplicate key, same value", '{"a":1,"a":1}'),
        "duplicate-key-different-value": _invalid(
            "duplicate key, different values", '{"a":1,"a":2}'
        ),
        "duplicate-key-via-escape": _invalid(
            "duplicate key spelled once raw, once escaped", r'{"a":1,"\u0061":2}'
        ),
        "duplicate-key-nested": _invalid("duplicate key in a nested object", '{"x":{"a":1,"a":2}}'),
        # strings that are not Unicode
        "lone-high-surrogate": _invalid("a lone high surrogate is not Unicode text", r'"\ud800"'),
        "lone-low-surrogate": _invalid("a lone low surrogate is not Unicode text", r'"\udc00"'),
        "surrogates-reversed": _invalid("a low surrogate before a high one", r'"\ude00\ud83d"'),
        "lone-surrogate-in-key": _invalid("a lone surrogate in a key", r'{"\ud800":1}'),
        "raw-control-char-in-string": _invalid("a raw line feed inside a string", '"a\nb"'),
        "invalid-escape": _invalid("\\x is not a JSON escape", r'"\x41"'),
        # not one JSON value
        "trailing-garbage": _invalid("text after the value", '{"a":1}x'),
        "trailing-second-value": _invalid("two values", '{"a":1}{}'),
        "trailing-comma-array": _invalid("trailing comma in an array", "[1,2,]"),
        "trailing-comma-object": _invalid("trailing comma in an object", '{"a":1,}'),
        "empty-input": _invalid("no value at all", ""),
        "whitespace-only": _invalid("only whitespace", " \n "),
        "single-quotes": _invalid("single-quoted strings are not JSON", "{'a':1}"),
        "unquoted-key": _invalid("unquoted keys are not JSON", "{a:1}"),
        "comment": _invalid("comments are not JSON", '{"a":1 /* note */}'),
        "truncated": _invalid("input ends inside an object", '{"a":'),
        "unterminated-string": _invalid("input ends inside a string", '"abc'),
        "python-literal": _invalid("True is not a JSON literal", "True"),
        # depth
        "nesting-65-arrays": _invalid(
            "65 nested arrays around a value: deeper than 64", "[" * 65 + "0" + "]" * 65
        ),
        "nesting-65-objects": _invalid(
            "65 nested objects around a value: deeper than 64", '{"a":' * 65 + "0" + "}" * 65
        ),
        "nesting-5000": _invalid(
            "5000 nested arrays: refused, not a crash", "[" * 5000 + "]" * 5000
        ),
    }


def check_canonical_case(case: Case) -> None:
    """Raise CanonicalEncodingError, or AssertionError on a wrong result."""
    data = case["input_json"].encode("utf-8")
    value = parse_canonical(data)
    expected = case["canonical"].encode("utf-8")
    assert canonical_json(value) == expected, canonical_json(value)
    assert is_canonical(expected)


# ----------------------------------------------------------------------- signatures

_SIGNER_SEED = _fixed("signatures/signer")
_OTHER_SEED = _fixed("signatures/other-signer")
_MESSAGE = (
    '{"args":{"grantee":"hospital-a","patient":"p-7f3a","scope":"observation"},'
    '"contract":"records","creator":"hospital-a/dr-li","function":"grant_consent",'
    '"nonce":"6a1f0c","note":"été","timestamp":1700000000000}'
)
# Ed25519 group order: S + L verifies under a lax verifier (signature malleability).
_ED25519_L = 2**252 + 27742317777372353535851937790883648493

# RFC 8032 section 7.1, TEST 1 to 3: secret key, public key, message, signature (hex).
_RFC8032 = {
    "test-1": (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    "test-2": (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    "test-3": (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
}


def signature_cases() -> dict[str, Case]:
    """Ed25519 over canonical JSON: the happy path and broken copies, by file name."""
    signer = SigningKey.from_seed(_SIGNER_SEED)
    other = SigningKey.from_seed(_OTHER_SEED)
    signature = signer.sign(_MESSAGE.encode("utf-8"))
    valid: Case = {
        "description": "Ed25519 signature over a canonical JSON message",
        "public_key": _b64(signer.public_bytes()),
        "message_json": _MESSAGE,
        "signature": _b64(signature),
    }
    cases: dict[str, Case] = {"valid": valid}

    def broken(name: str, description: str, **changes: str) -> None:
        case = {**valid, **changes, "description": description, "wantErr": True}
        cases[name] = case

    for byte, bit, part in ((0, 0, "R"), (31, 7, "R"), (32, 0, "S"), (63, 7, "S")):
        broken(
            f"signature-bit-flip-byte{byte}-bit{bit}",
            f"bit {bit} of signature byte {byte} (in {part}) flipped",
            signature=_b64(_flip(signature, byte, bit)),
        )
    s_plus_l = int.from_bytes(signature[32:], "little") + _ED25519_L
    broken(
        "signature-s-plus-group-order",
        "S replaced by S + L: the same scalar mod L, refused by the S < L check (malleability)",
        signature=_b64(signature[:32] + s_plus_l.to_bytes(32, "little")),
    )
    broken(
        "signature-by-other-key",
        "a valid signature over the same message by another key",
        signature=_b64(other.sign(_MESSAGE.encode("utf-8"))),
    )
    broken("signature-truncated", "signature cut to 63 bytes", signature=_b64(signature[:63]))
    broken("signature-too-long", "signature with a 65th byte", signature=_b64(signature + b"\x00"))
    broken("signature-empty", "empty signature", signature="")
    broken("signature-not-base64", "signature is not base64", signature="not base64!")
    broken(
        "signature-hex",
        "signature in hex instead of base64",
        signature=signature.hex(),
    )
    public = signer.public_bytes()
    broken(
        "public-key-bit-flip-byte0-bit0",
        "bit 0 of public key byte 0 flipped",
        public_key=_b64(_flip(public, 0, 0)),
    )
    broken(
        "public-key-bit-flip-byte31-bit7",
        "the sign bit of the public key flipped",
        public_key=_b64(_flip(public, 31, 7)),
    )
    broken(
        "public-key-other",
        "another valid public key",
        public_key=_b64(other.public_bytes()),
    )
    broken("public-key-truncated", "public key cut to 31 bytes", public_key=_b64(public[:31]))
    broken("public-key-empty", "empty public key", public_key="")
    broken("public-key-not-base64", "public key is not base64", public_key="***")
    broken(
        "message-value-changed",
        "one value changed (scope), message still canonical",
        message_json=_MESSAGE.replace('"observation"', '"all"'),
    )
    broken(
        "message-key-removed",
        "one member removed, message still canonical",
        message_json=_MESSAGE.replace(',"note":"été"', ""),
    )
    broken(
        "message-extra-whitespace",
        "same value re-serialised with whitespace: not canonical",
        message_json=json.dumps(json.loads(_MESSAGE), ensure_ascii=False, sort_keys=True),
    )
    broken(
        "message-keys-unsorted",
        "same value re-serialised compactly with keys unsorted: not canonical",
        message_json=json.dumps(
            dict(reversed(json.loads(_MESSAGE).items())),
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    )
    broken(
        "message-escaped-non-ascii",
        "same value with non-ASCII text escaped as \\u00e9: not canonical",
        message_json=_MESSAGE.replace("été", r"\u00e9t\u00e9"),
    )
    broken(
        "message-float",
        "timestamp written as a float: outside the profile",
        message_json=_MESSAGE.replace("1700000000000", "1.7e12"),
    )
    broken(
        "message-duplicate-key",
        "a duplicated member: not canonical",
        message_json=_MESSAGE.replace('"nonce":"6a1f0c",', '"nonce":"6a1f0c","nonce":"6a1f0c",'),
    )
    return cases


def rfc8032_cases() -> dict[str, Case]:
    """RFC 8032 section 7.1 TEST 1-3, and broken copies of them, by file name."""
    cases: dict[str, Case] = {}
    for name, (secret, public, message, signature) in _RFC8032.items():
        cases[name] = {
            "description": f"RFC 8032 section 7.1 {name.upper().replace('-', ' ')}",
            "secret_key": secret,
            "public_key": public,
            "message": message,
            "signature": signature,
        }
    test1, test2, test3 = cases["test-1"], cases["test-2"], cases["test-3"]
    cases["test-1-message-one-zero-byte"] = {
        **test1,
        "description": "TEST 1's signature over the empty message, checked against 0x00",
        "message": "00",
        "wantErr": True,
    }
    cases["test-2-message-changed"] = {
        **test2,
        "description": "TEST 2's signature checked against message 0x73",
        "message": "73",
        "wantErr": True,
    }
    cases["test-3-signature-of-test-2"] = {
        **test3,
        "description": "TEST 3's key and message with TEST 2's signature",
        "signature": test2["signature"],
        "wantErr": True,
    }
    return cases


def check_signature_case(case: Case) -> None:
    """Raise SignatureError unless the case's signature verifies over canonical JSON."""
    public = decode_b64(case["public_key"], what="public_key")
    signature = decode_b64(case["signature"], what="signature")
    message = case["message_json"].encode("utf-8")
    if not is_canonical(message):
        raise SignatureError("message is not in canonical form")
    verify_signature(public, signature, canonical_json(parse_canonical(message)))


def check_rfc8032_case(case: Case) -> None:
    """Raise SignatureError unless the case verifies; check signing for valid ones."""
    public = bytes.fromhex(case["public_key"])
    message = bytes.fromhex(case["message"])
    signature = bytes.fromhex(case["signature"])
    verify_signature(public, signature, message)
    key = SigningKey.from_seed(bytes.fromhex(case["secret_key"]))
    assert key.public_bytes() == public
    assert key.sign(message) == signature


# ------------------------------------------------------------------------- envelope

_RECIPIENT = _fixed("envelope/recipient")
_OTHER_RECIPIENT = _fixed("envelope/other-recipient")
_DRAWS = {
    "data_key": _fixed("envelope/data-key"),
    "payload_nonce": _fixed("envelope/payload-nonce", 12),
    "ephemeral_private": _fixed("envelope/ephemeral"),
    "wrap_nonce": _fixed("envelope/wrap-nonce", 12),
}
_PLAINTEXT = (
    b'{"code":{"text":"blood pressure"},"resourceType":"Observation",'
    b'"status":"final","subject":{"reference":"Patient/p-7f3a"}}'
)
_ASSOCIATED_DATA = b"hospital-a/records/obs-0001"


def replay(*chunks: bytes) -> Callable[[int], bytes]:
    """A random source that hands out ``chunks`` in order, each exactly as asked."""
    pending: Iterator[bytes] = iter(chunks)

    def random(size: int) -> bytes:
        chunk = next(pending)
        assert len(chunk) == size, (len(chunk), size)
        return chunk

    return random


def envelope_case(
    description: str, plaintext: bytes, draws: dict[str, bytes], recipient: bytes
) -> Case:
    """A valid case: seal and wrap with the given draws, recorded as base64."""
    sealed, data_key = seal(
        plaintext,
        associated_data=_ASSOCIATED_DATA,
        random=replay(draws["data_key"], draws["payload_nonce"]),
    )
    wrapped = wrap_key(
        data_key,
        VaultKey.from_bytes(recipient).public_bytes(),
        random=replay(draws["ephemeral_private"], draws["wrap_nonce"]),
    )
    return {
        "description": description,
        "recipient_private": _b64(recipient),
        "associated_data": _b64(_ASSOCIATED_DATA),
        "plaintext": _b64(plaintext),
        "draws": {name: _b64(value) for name, value in draws.items()},
        "wrapped": wrapped.to_json(),
        "sealed": sealed.to_json(),
    }


def envelope_cases() -> dict[str, Case]:
    """Sealed payloads with fixed keys: the happy path and broken copies, by file name."""
    valid = envelope_case(
        "a FHIR Observation sealed and its data key wrapped for the vault key",
        _PLAINTEXT,
        _DRAWS,
        _RECIPIENT,
    )
    empty_draws = {name: _fixed(f"envelope/empty/{name}", len(v)) for name, v in _DRAWS.items()}
    cases: dict[str, Case] = {
        "valid": valid,
        "valid-empty-plaintext": envelope_case(
            "an empty payload still carries a tag and opens to b''",
            b"",
            empty_draws,
            _RECIPIENT,
        ),
    }

    def broken(name: str, description: str, change: Callable[[Case], None]) -> None:
        case = copy.deepcopy(valid)
        del case["draws"], case["plaintext"]
        change(case)
        case["description"] = description
        case["wantErr"] = True
        cases[name] = case

    def flip(part: str, field: str, byte: int, bit: int) -> Callable[[Case], None]:
        def change(case: Case) -> None:
            case[part][field] = _flip_b64(case[part][field], byte, bit)

        return change

    def put(part: str, field: str, value: Any) -> Callable[[Case], None]:
        def change(case: Case) -> None:
            case[part][field] = value

        return change

    def drop(part: str, field: str) -> Callable[[Case], None]:
        def change(case: Case) -> None:
            del case[part][field]

        return change

    def cut(part: str, field: str, size: int) -> Callable[[Case], None]:
        def change(case: Case) -> None:
            case[part][field] = _b64(base64.b64decode(case[part][field])[:size])

        return change

    def set_top(field: str, value: Any) -> Callable[[Case], None]:
        def change(case: Case) -> None:
            case[field] = value

        return change

    broken(
        "sealed-ciphertext-bit-flip-first",
        "first payload bit flipped",
        flip("sealed", "ciphertext", 0, 0),
    )
    broken(
        "sealed-ciphertext-bit-flip-tag",
        "last bit of the payload's GCM tag flipped",
        flip("sealed", "ciphertext", -1, 7),
    )
    broken("sealed-nonce-bit-flip", "payload nonce bit flipped", flip("sealed", "nonce", 5, 3))
    broken(
        "wrapped-ciphertext-bit-flip",
        "wrapped data key bit flipped",
        flip("wrapped", "ciphertext", 0, 0),
    )
    broken(
        "wrapped-ciphertext-bit-flip-tag",
        "last bit of the wrap's GCM tag flipped",
        flip("wrapped", "ciphertext", -1, 7),
    )
    broken("wrapped-nonce-bit-flip", "wrap nonce bit flipped", flip("wrapped", "nonce", 0, 0))
    broken(
        "ephemeral-key-bit-flip",
        "ephemeral public key bit flipped (another point)",
        flip("wrapped", "ephemeral_public", 0, 0),
    )
    broken(
        "ephemeral-key-high-bit",
        "top bit of the ephemeral public key flipped: X25519 ignores it, so the shared "
        "secret is unchanged; only binding the key bytes into HKDF catches it",
        flip("wrapped", "ephemeral_public", 31, 7),
    )
    broken(
        "ephemeral-key-low-order",
        "ephemeral public key of order 1 (all zeros)",
        put("wrapped", "ephemeral_public", _b64(bytes(32))),
    )
    broken(
        "associated-data-changed",
        "opened for another record id",
        set_top("associated_data", _b64(b"hospital-a/records/obs-0002")),
    )
    broken(
        "associated-data-empty", "opened with empty associated data", set_top("associated_data", "")
    )
    broken(
        "recipient-wrong",
        "another vault's key",
        set_top("recipient_private", _b64(_OTHER_RECIPIENT)),
    )
    broken(
        "sealed-ciphertext-short",
        "payload ciphertext shorter than a GCM tag",
        cut("sealed", "ciphertext", 15),
    )
    broken(
        "sealed-ciphertext-truncated",
        "payload ciphertext missing its last byte",
        cut("sealed", "ciphertext", len(_PLAINTEXT) + 15),
    )
    broken("sealed-nonce-short", "11-byte payload nonce", cut("sealed", "nonce", 11))
    broken("wrapped-ciphertext-short", "47-byte wrapped key", cut("wrapped", "ciphertext", 47))
    broken(
        "ephemeral-key-short",
        "31-byte ephemeral public key",
        cut("wrapped", "ephemeral_public", 31),
    )
    broken(
        "sealed-ciphertext-not-base64",
        "payload ciphertext is not base64",
        put("sealed", "ciphertext", "not base64!"),
    )
    broken(
        "sealed-ciphertext-not-string",
        "payload ciphertext is a number",
        put("sealed", "ciphertext", 12),
    )

    def non_canonical_padding(case: Case) -> None:
        # 32 bytes leave 2 unused bits in the last base64 digit; set one of them.
        text: str = case["wrapped"]["ephemeral_public"]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(text[-2])
        case["wrapped"]["ephemeral_public"] = text[:-2] + alphabet[last | 1] + "="

    broken(
        "ephemeral-key-non-canonical-base64",
        "ephemeral key in base64 with a non-zero padding bit",
        non_canonical_padding,
    )
    broken("wrapped-version-2", "unknown format version", put("wrapped", "v", 2))
    broken(
        "sealed-version-true",
        "version true, which Python would compare equal to 1",
        put("sealed", "v", True),
    )
    broken("sealed-version-missing", "no version field", drop("sealed", "v"))
    broken("wrapped-field-missing", "wrapped key without its nonce", drop("wrapped", "nonce"))
    broken(
        "wrapped-field-extra",
        "wrapped key with an unknown field",
        put("wrapped", "recipient", "hospital-b"),
    )
    broken(
        "sealed-not-object",
        "sealed payload is a JSON array",
        set_top("sealed", [valid["sealed"]["nonce"], valid["sealed"]["ciphertext"]]),
    )
    return cases


def check_envelope_case(case: Case) -> bytes:
    """Open the case's payload; raise DecryptionError if it does not open."""
    recipient = VaultKey.from_bytes(base64.b64decode(case["recipient_private"]))
    wrapped = WrappedKey.from_json(case["wrapped"])
    sealed = Sealed.from_json(case["sealed"])
    data_key = unwrap_key(wrapped, recipient)
    associated_data = base64.b64decode(case["associated_data"])
    return open_sealed(sealed, data_key, associated_data=associated_data)


# --------------------------------------------------------------------------- output


def _verify(
    folder: str,
    cases: dict[str, Case],
    check: Callable[[Case], object],
    error: type[Exception],
) -> list[str]:
    problems = []
    for name, case in cases.items():
        try:
            check(case)
        except error as exc:
            if not case.get("wantErr"):
                problems.append(f"{folder}/{name}: valid case refused: {exc}")
        except AssertionError as exc:
            problems.append(f"{folder}/{name}: wrong result: {exc}")
        else:
            if case.get("wantErr"):
                problems.append(f"{folder}/{name}: broken case accepted")
    return problems


def _write(folder: Path, cases: dict[str, Case]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        stale.unlink()
    for name, case in cases.items():
        text = json.dumps(case, indent=2, ensure_ascii=True) + "\n"
        (folder / f"{name}.json").write_text(text, encoding="ascii")


def main(argv: list[str]) -> int:
    """Check every case against the code, then write them under the output folder."""
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    folders = {
        "canonical": (canonical_cases(), check_canonical_case, CanonicalEncodingError),
        "signatures": (signature_cases(), check_signature_case, SignatureError),
        "signatures/rfc8032": (rfc8032_cases(), check_rfc8032_case, SignatureError),
        "envelope": (envelope_cases(), check_envelope_case, DecryptionError),
    }
    problems: list[str] = []
    for folder, (cases, check, error) in folders.items():
        problems += _verify(folder, cases, check, error)
    if problems:
        print("the code disagrees with these cases; nothing written:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for folder, (cases, _, _) in folders.items():
        _write(root / folder, cases)
        print(f"{folder}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
