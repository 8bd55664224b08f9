"""Errors of the signed sanitisation certificate: building, signing, loading and verifying it.

``SignatureInvalidError`` is defined once, in ``imaging.signing``, as both a ``SigningError`` and a
``CertificateError``: a bad signature is the same failure whether the signing primitives or the
certificate check meet it, and each caller's ``except`` keeps catching it.
"""

from __future__ import annotations


class CertificateError(Exception):
    """Base of every certificate error; ``str(err)`` is a one-line reason."""


class CertificateRefusedError(CertificateError):
    """The erase outcome (or its context) cannot be certified."""


class CertificateContentError(CertificateError):
    """The certificate document cannot be canonicalised (e.g. non-finite float, huge integer)."""


class EnvelopeLoadError(CertificateError):
    """An envelope file that cannot be read or is not a JSON object."""


class MalformedEnvelopeError(CertificateError):
    """A field of the envelope is missing, extra or of the wrong type or shape."""


class UnsupportedEnvelopeError(CertificateError):
    """Unknown format name, schema version or signature algorithm."""


class KeyMismatchError(CertificateError):
    """The envelope names a different signing key from the one given to verify it."""


class DigestMismatchError(CertificateError):
    """The certificate's canonical bytes no longer hash to the recorded digest."""
