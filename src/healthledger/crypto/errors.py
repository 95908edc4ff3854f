"""Errors raised by the crypto layer."""

from healthledger.errors import HealthledgerError


class CryptoError(HealthledgerError):
    """Base class for every error of the crypto layer."""


class CanonicalEncodingError(CryptoError):
    """A value cannot be put in the canonical JSON profile (floats, non-ASCII keys, ...)."""


class SignatureError(CryptoError):
    """A signature does not verify, or a key or signature is malformed."""


class CertificateError(CryptoError):
    """A certificate is malformed, not issued by the expected CA, or outside its validity."""


class DecryptionError(CryptoError):
    """Ciphertext cannot be decrypted: wrong key, tampered data or a shredded data key."""


class MalformedEncoding(CryptoError):
    """Bytes or text that are not in the encoding they claim (Base45, CBOR, COSE, JWS,
    SD-JWT ...); ``stage`` names the decoding step that refused them."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
