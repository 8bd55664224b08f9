"""Forged and equivalent variants of one real signed certificate, as the bytes of a file.

``forged`` variants must be rejected by every verifier: a changed value of each type, members added
or removed, types confused (1.0 and true for 1), unknown envelope or signature members, duplicate
member names (the last copy the genuine one, so a lenient parser sees signed content), encodings
other than UTF-8, bad numbers, bad base64, and certificates re-signed with the site key whose
content the format forbids. ``equivalent`` variants only re-spell the same JSON (layout, member
order, escapes) and must be accepted.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

Variant = tuple[str, bytes]


class Pairs(list):  # type: ignore[type-arg]
    """An object written member by member, so a name can appear twice."""


def emit(value: Any) -> str:
    """JSON text that keeps ``Pairs`` duplicates (json.dumps cannot write them)."""
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{emit(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(emit(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def leaves(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) of the document, containers included (a path is its keys and indexes)."""
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from leaves(value, (*path, key))


def replaced(envelope: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(envelope)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return out


def _mutations(value: Any) -> list[tuple[str, Any]]:
    """Other values of the same and of confusable types."""
    if isinstance(value, bool):
        return [("flipped", not value), ("as-int", int(value)), ("as-string", str(value).lower()), ("null", None)]
    if isinstance(value, int):
        return [("plus-one", value + 1), ("half", value + 0.5), ("as-string", str(value)),
                ("as-bool", value != 1), ("null", None), ("negated", -value - 1)]  # fmt: skip
    if isinstance(value, float):
        return [("nudged", value / 2), ("as-string", repr(value)), ("null", None)]
    if isinstance(value, str):
        return [("appended", value + "x"), ("emptied" if value else "filled", "" if value else "x"),
                ("as-int", 1), ("null", None), ("upper", value.upper() + "Z")]  # fmt: skip
    if value is None:
        return [("empty-string", ""), ("zero", 0), ("false", False)]
    if isinstance(value, list):
        return [("emptied" if value else "grown", [] if value else ["x"]), ("as-object", {})]
    assert isinstance(value, dict)
    return [("unknown-member", {**value, "zz_unsigned": 1}), ("as-array", list(value.values()))] + (
        [("member-removed", {k: v for k, v in value.items() if k != next(iter(value))})] if value else []
    )


def content_forgeries(envelope: dict[str, Any]) -> Iterator[Variant]:
    """Every value of the signed document changed, one at a time, the signature left as it was."""
    for path, value in leaves(envelope["certificate"]):
        for how, other in _mutations(value):
            name = "certificate." + ".".join(map(str, path)) + f":{how}"
            yield name, emit(replaced(envelope, ("certificate", *path), other)).encode()


def envelope_forgeries(envelope: dict[str, Any]) -> Iterator[Variant]:
    sig = envelope["signature"]
    value = base64.b64decode(sig["value"])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(sig["value"][-3]) ^ 1]  # one of the 4 unused bits: same bytes, other text
    other_bits = sig["value"][:-3] + last + sig["value"][-2:]
    changes: list[tuple[tuple, Any]] = [
        (("format",), "device-factory-certificate-v0"), (("format",), None), (("format",), [envelope["format"]]),
        (("schema_version",), 2.0), (("schema_version",), True), (("schema_version",), "2"), (("schema_version",), 1),
        (("schema_version",), 3), (("schema_version",), 0), (("schema_version",), None), (("schema_version",), [2]),
        (("certificate",), []), (("certificate",), None), (("certificate",), "{}"), (("signature",), []),
        (("signature", "algorithm"), "ed25519"), (("signature", "algorithm"), "EdDSA"), (("signature", "algorithm"), 1),
        (("signature", "key_fingerprint"), sig["key_fingerprint"] + "="), (("signature", "key_fingerprint"), None),
        (("signature", "digest_sha256"), sig["digest_sha256"].upper()), (("signature", "digest_sha256"), 0),
        (("signature", "digest_sha256"), hashlib.sha256(b"other").hexdigest()),
        (("signature", "value"), sig["value"].rstrip("=")), (("signature", "value"), sig["value"] + "\n"),
        (("signature", "value"), "-" + sig["value"][1:]), (("signature", "value"), other_bits),
        (("signature", "value"), base64.b64encode(value[:-1]).decode()), (("signature", "value"), 1),
        (("signature", "value"), base64.b64encode(bytes(64)).decode()),
    ]  # fmt: skip
    for path, other in changes:
        yield f"{'.'.join(path)}={json.dumps(other)}", emit(replaced(envelope, path, other)).encode()
    for name in ("format", "schema_version", "certificate", "signature"):
        yield f"{name}:removed", emit({k: v for k, v in envelope.items() if k != name}).encode()
    for name in sig:
        fewer = {k: v for k, v in sig.items() if k != name}
        yield f"signature.{name}:removed", emit(replaced(envelope, ("signature",), fewer)).encode()
    yield "envelope:unknown-member", emit({**envelope, "comment": "checked by the lab"}).encode()
    yield "signature:unknown-member", emit(replaced(envelope, ("signature",), {**sig, "signed_by": "x"})).encode()


def duplicate_forgeries(envelope: dict[str, Any]) -> Iterator[Variant]:
    """A first copy with another value before the genuine one: the genuine (last) one is signed."""
    decoy = {str: "forged", int: 7, bool: False, float: 0.5}
    for path, value in leaves(envelope):
        if not path or isinstance(path[-1], int):
            continue
        parent_path, name = path[:-1], path[-1]
        parent = envelope
        for key in parent_path:
            parent = parent[key]
        fake = decoy.get(type(value), "forged")
        pairs = Pairs([(name, fake), *parent.items()])
        forged = pairs if not parent_path else replaced(envelope, parent_path, pairs)
        yield ".".join(map(str, path)) + ":duplicated", emit(forged).encode()
    escaped = emit(Pairs([("form\\u0061t", "other"), *envelope.items()])).replace('"form\\\\u0061t"', '"form\\u0061t"')
    yield "format:duplicated-by-escape", escaped.encode()


def encoding_forgeries(envelope: dict[str, Any]) -> Iterator[Variant]:
    text = emit(envelope)
    yield "utf-8-bom", b"\xef\xbb\xbf" + text.encode()
    for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        yield codec, text.encode(codec)
    yield "latin-1", text.encode("latin-1", errors="replace")
    yield "trailing-garbage", text.encode() + b" x"
    yield "two-documents", text.encode() + text.encode()
    yield "wrapped-in-array", f"[{text}]".encode()
    yield "empty-file", b""
    yield "deeply-nested", ('{"certificate":' + "[" * 200_000 + "]" * 200_000 + "}").encode()
    coverage = json.dumps(envelope["certificate"]["verification"]["coverage"])
    for bad in ("NaN", "Infinity", "-Infinity", "1e400"):
        yield f"coverage={bad}", text.replace(f'"coverage":{coverage}', f'"coverage":{bad}').encode()
    yield "lone-surrogate", text.replace('"media":{', '"media":{"x":"\\ud800",', 1).encode()


def resigned_forgeries(envelope: dict[str, Any], key: Ed25519PrivateKey) -> Iterator[Variant]:
    """Content the format forbids, signed with the site key (the signature itself verifies)."""
    cert = envelope["certificate"]
    for how, change in (("schema_version=1", 1), ('schema_version="2"', "2"), ("schema_version=true", True)):
        yield f"resigned:{how}", _signed(envelope, {**cert, "schema_version": change}, key)
    for how, kind in (("type-unknown", "erasure"), ("type-null", None), ("type-list", ["sanitisation"])):
        yield f"resigned:{how}", _signed(envelope, {**cert, "certificate_type": kind}, key)
    yield "resigned:type-missing", _signed(envelope, {k: v for k, v in cert.items() if k != "certificate_type"}, key)
    for how, cid in (("id-upper", cert["certificate_id"].upper()), ("id-not-uuid", "cert-1"), ("id-int", 1)):
        yield f"resigned:{how}", _signed(envelope, {**cert, "certificate_id": cid}, key)
    yield "resigned:id-missing", _signed(envelope, {k: v for k, v in cert.items() if k != "certificate_id"}, key)
    # Same canonical bytes as the genuine document (JCS writes 2.0 as 2), so the signature is intact.
    yield "certificate.schema_version=2.0", emit(replaced(envelope, ("certificate", "schema_version"), 2.0)).encode()


def _signed(envelope: dict[str, Any], cert: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    payload = rfc8785.dumps(cert)
    sig = {**envelope["signature"], "digest_sha256": hashlib.sha256(payload).hexdigest(),
           "value": base64.b64encode(key.sign(payload)).decode()}  # fmt: skip
    return emit({**envelope, "certificate": cert, "signature": sig}).encode()


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return [_reordered(v) for v in value] if isinstance(value, list) else value


def equivalents(envelope: dict[str, Any], key: Ed25519PrivateKey) -> Iterator[Variant]:
    """The same JSON spelled differently, and the genuine content re-signed: all verify."""
    yield "as-written", json.dumps(envelope, indent=2, ensure_ascii=False).encode()
    yield "minified", emit(envelope).encode()
    yield "ascii-escaped", json.dumps(envelope, ensure_ascii=True).encode()
    yield "members-reversed", json.dumps(_reordered(envelope), indent=1).encode()
    yield "crlf-tabs", json.dumps(envelope, indent="\t").replace("\n", "\r\n").encode()
    yield "surrounding-whitespace", b" \n\t" + emit(envelope).encode() + b"\r\n\n"
    yield "escaped-solidus", emit(envelope).replace("/", "\\/").encode()
    yield "resigned-unchanged", _signed(envelope, envelope["certificate"], key)


def corpus(envelope: dict[str, Any], key: Ed25519PrivateKey) -> tuple[list[Variant], list[Variant]]:
    """(forged, equivalent) variants of ``envelope``; names are unique."""
    makers: list[Callable[[], Iterator[Variant]]] = [
        lambda: content_forgeries(envelope), lambda: envelope_forgeries(envelope),
        lambda: duplicate_forgeries(envelope), lambda: encoding_forgeries(envelope),
        lambda: resigned_forgeries(envelope, key),
    ]  # fmt: skip
    forged = [variant for make in makers for variant in make()]
    return forged, list(equivalents(envelope, key))
