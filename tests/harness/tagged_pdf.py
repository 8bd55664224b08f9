"""Reads a tagged PDF back with pypdf, independently of the code that wrote it: the structure tree
in reading order with the text of each element's marked content, the MCIDs the page content
marks and the ones the tree references, the ParentTree's answer for every MCID, and whatever is
painted outside any marked content (which a screen reader could neither read nor skip)."""

from __future__ import annotations

import itertools
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ContentStream, DictionaryObject

from harness.requirements import require_tool

# Operators that put marks on the page: text showing, path painting, XObjects, shadings, inline images.
_PAINTING = {b"Tj", b"TJ", b"'", b'"', b"f", b"F", b"f*", b"S", b"s", b"B", b"B*", b"b", b"b*", b"Do", b"sh"}
_PAINTING_NAMES = {b"INLINE IMAGE"}


@dataclass
class Element:
    role: str
    text: str
    attributes: dict[str, Any]
    depth: int


@dataclass
class TaggedPdf:
    reader: PdfReader
    elements: list[Element] = field(default_factory=list)  # depth-first, i.e. reading order
    tree_mcids: set[tuple[int, int]] = field(default_factory=set)
    page_mcids: set[tuple[int, int]] = field(default_factory=set)
    parent_tree_mismatches: list[tuple[int, int]] = field(default_factory=list)
    unmarked_painting: list[tuple[int, bytes]] = field(default_factory=list)
    artifact_text: list[str] = field(default_factory=list)

    def roles(self, *wanted: str) -> list[tuple[str, str]]:
        return [(e.role, e.text) for e in self.elements if e.role in wanted]

    def row_values(self) -> dict[str, str]:
        """Every table row ``TH`` -> following ``TD`` (a key-value table's label and value)."""
        pairs: dict[str, str] = {}
        cells = [e for e in self.elements if e.role in ("TR", "TH", "TD")]
        for first, second in itertools.pairwise(cells):
            if first.role == "TH" and second.role == "TD":
                pairs.setdefault(first.text, second.text)
        return pairs


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_tagged(path: Path) -> TaggedPdf:
    reader = PdfReader(str(path))
    result = TaggedPdf(reader)
    texts = _marked_text(reader, result)
    pages = {page.indirect_reference.idnum: index for index, page in enumerate(reader.pages)}
    owners: dict[tuple[int, int], int] = {}
    tree = reader.root_object["/StructTreeRoot"]
    kids = tree["/K"] if isinstance(tree["/K"], list) else [tree["/K"]]
    for kid in kids:
        _walk(kid.get_object(), 0, pages, texts, owners, result)
    _check_parent_tree(reader, tree, owners, result)
    return result


def _marked_text(reader: PdfReader, result: TaggedPdf) -> dict[tuple[int, int], str]:
    """Text per (page, MCID), and every painting operator found outside marked content."""
    texts: dict[tuple[int, int], list[str]] = {}
    for index, page in enumerate(reader.pages):
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"BDC" and isinstance(operands[1], DictionaryObject) and "/MCID" in operands[1]:
                result.page_mcids.add((index, int(operands[1]["/MCID"])))
        scan = _PageScan(index, result, texts)
        page.extract_text(visitor_operand_before=scan.operator, visitor_text=scan.text)
    return {key: "".join(parts) for key, parts in texts.items()}


class _PageScan:
    """Follows the marked-content nesting of one page while pypdf extracts its text."""

    def __init__(self, page: int, result: TaggedPdf, texts: dict[tuple[int, int], list[str]]) -> None:
        self.page, self.result, self.texts = page, result, texts
        self.stack: list[int | None] = []

    def operator(self, operator: bytes, operands: list[Any], *_: Any) -> None:
        if operator == b"BDC":
            props = operands[1]
            self.stack.append(int(props["/MCID"]) if isinstance(props, dict) and "/MCID" in props else None)
        elif operator == b"BMC":
            self.stack.append(None)
        elif operator == b"EMC":
            self.stack.pop()
        elif (operator in _PAINTING or operator in _PAINTING_NAMES) and not self.stack:
            self.result.unmarked_painting.append((self.page, operator))

    def text(self, value: str, *_: Any) -> None:
        if not value.strip():
            return
        mcid = next((m for m in reversed(self.stack) if m is not None), None)
        if mcid is None:
            self.result.artifact_text.append(_squash(value))
        else:
            self.texts.setdefault((self.page, mcid), []).append(value)


def _walk(
    node: DictionaryObject,
    depth: int,
    pages: dict[int, int],
    texts: dict[tuple[int, int], str],
    owners: dict[tuple[int, int], int],
    result: TaggedPdf,
) -> None:
    home = pages.get(node.raw_get("/Pg").idnum) if "/Pg" in node else None
    element = Element(str(node["/S"])[1:], "", {}, depth)
    for key in ("/Alt", "/A"):
        if key in node:
            element.attributes[key] = node[key].get_object()
    result.elements.append(element)
    kids = node.get("/K", [])
    own: list[str] = []
    for kid in kids if isinstance(kids, list) else [kids]:
        kid = kid.get_object() if hasattr(kid, "get_object") else kid
        if isinstance(kid, int):
            key = (home, int(kid))
        elif kid.get("/Type") == "/MCR":
            key = (pages[kid.raw_get("/Pg").idnum], int(kid["/MCID"]))
        else:
            _walk(kid, depth + 1, pages, texts, owners, result)
            continue
        result.tree_mcids.add(key)
        owners[key] = node.indirect_reference.idnum
        own.append(texts.get(key, ""))
    element.text = _squash(" ".join(own))


def _check_parent_tree(
    reader: PdfReader, tree: DictionaryObject, owners: dict[tuple[int, int], int], result: TaggedPdf
) -> None:
    nums = tree["/ParentTree"].get_object()["/Nums"]
    arrays = {int(nums[i]): nums[i + 1].get_object() for i in range(0, len(nums), 2)}
    for index, page in enumerate(reader.pages):
        parents = arrays.get(int(page.get("/StructParents", -1)), [])
        for mcid in {m for p, m in result.page_mcids if p == index}:
            if mcid >= len(parents) or parents[mcid].get_object().indirect_reference.idnum != owners.get((index, mcid)):
                result.parent_tree_mismatches.append((index, mcid))


def pdfinfo(path: Path) -> str:
    tool = require_tool("pdfinfo")
    return subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
