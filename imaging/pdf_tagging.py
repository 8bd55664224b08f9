"""Tagged (accessible) PDFs from reportlab platypus stories.

reportlab draws pages but writes no logical structure, so a screen reader meets an untagged PDF.
This module adds the structure in two steps, without changing what is drawn:

1. While the story is drawn, a :class:`TagRecorder` brackets the content: a flowable wrapped by
   :meth:`TagRecorder.tagged` is drawn inside ``/H1 <</MCID n>> BDC ... EMC``; a table made by
   :meth:`TagRecorder.table` tags each cell as TH or TD in a TR (through reportlab's table render
   callback, so tables that split across pages keep one Table element); table grids and
   backgrounds, page footers and header rows repeated on a continuation page are drawn as
   ``/Artifact`` (decoration a reader skips). Each marked-content sequence is recorded with its
   page and MCID under its structure element.
2. :func:`finish_tagged` writes what was recorded into the PDF with pypdf (PDF 1.7 section 14.7-14.8):
   the StructTreeRoot (Document > H1/H2/P/Table(TR/TH/TD)/Figure, in reading order), the
   ParentTree mapping every page's MCIDs back to their elements, ``/MarkInfo <</Marked true>>``,
   the document language, the title (document information and XMP) shown in the window title
   (``/DisplayDocTitle``), and any embedded files.

No database or web import here: ``imaging`` stays free of ``factory``/``api``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Table

LANGUAGE = "en-GB"


@dataclass(frozen=True)
class MarkedContent:
    """One ``BDC ... EMC`` sequence: the page (0-based) it is on and its MCID there."""

    page: int
    mcid: int


@dataclass(eq=False)
class StructElement:
    """A node of the structure tree; ``scope`` is a TH's ``Row`` or ``Column``, ``alt`` a Figure's text."""

    role: str
    kids: list[StructElement | MarkedContent] = field(default_factory=list)
    alt: str | None = None
    scope: str | None = None

    def has_content(self) -> bool:
        return any(isinstance(kid, MarkedContent) or kid.has_content() for kid in self.kids)


class TagRecorder:
    """The structure of one document while it is drawn; one recorder per PDF."""

    def __init__(self) -> None:
        self.document = StructElement("Document")
        self._next_mcid: dict[int, int] = {}

    def element(self, role: str, parent: StructElement | None = None, **attributes: Any) -> StructElement:
        """A new element appended to ``parent`` (the Document by default): creation order is reading order."""
        element = StructElement(role, **attributes)
        (parent or self.document).kids.append(element)
        return element

    def begin(self, canvas: Canvas, element: StructElement) -> None:
        page = canvas.getPageNumber() - 1
        mcid = self._next_mcid.get(page, 0)
        self._next_mcid[page] = mcid + 1
        element.kids.append(MarkedContent(page, mcid))
        canvas.addLiteral(f"/{element.role} <</MCID {mcid}>> BDC")

    @staticmethod
    def begin_artifact(canvas: Canvas, kind: str = "Layout", subtype: str | None = None) -> None:
        extra = f" /Subtype /{subtype}" if subtype else ""
        canvas.addLiteral(f"/Artifact <</Type /{kind}{extra}>> BDC")

    @staticmethod
    def end(canvas: Canvas) -> None:
        canvas.addLiteral("EMC")

    @contextmanager
    def artifact(self, canvas: Canvas, kind: str = "Layout", subtype: str | None = None) -> Iterator[None]:
        self.begin_artifact(canvas, kind, subtype)
        try:
            yield
        finally:
            self.end(canvas)

    def tagged(self, role: str, flowable: Flowable, parent: StructElement | None = None, **attributes: Any) -> Tagged:
        """``flowable`` drawn as content of a new ``role`` element (H1, P, Figure with ``alt=`` ...)."""
        return Tagged(self, self.element(role, parent, **attributes), flowable)

    def table(
        self,
        data: Sequence[Sequence[Any]],
        *,
        header_rows: int = 0,
        header_columns: int = 0,
        parent: StructElement | None = None,
        **table_options: Any,
    ) -> Table:
        """A reportlab Table whose cells are tagged TH (the first ``header_rows`` rows and
        ``header_columns`` columns) or TD, row by row, under one Table element."""
        tagger = _TableTagger(self, self.element("Table", parent), header_rows, header_columns)
        return Table(data, renderCB=tagger, **table_options)

    def layout_table(self, data: Sequence[Sequence[Any]], **table_options: Any) -> Table:
        """A Table used for layout only: no Table element; its cells' flowables tag themselves and its
        grid and backgrounds are artifacts."""
        return Table(data, renderCB=_TableTagger(self, None, 0, 0), **table_options)

    def page_decoration(self, draw: Callable[[Canvas, Any], None]) -> Callable[[Canvas, Any], None]:
        """An ``onPage`` callback (footer, page number) drawn as a pagination artifact."""

        def decorated(canvas: Canvas, doc: Any) -> None:
            with self.artifact(canvas, "Pagination", "Footer"):
                draw(canvas, doc)

        return decorated

    def marked_pages(self) -> dict[int, int]:
        """How many MCIDs each page used (page index -> count)."""
        return dict(self._next_mcid)


class Tagged(Flowable):
    """A flowable drawn inside the marked content of its structure element; its split parts
    (a paragraph running onto the next page) stay content of the same element."""

    def __init__(self, recorder: TagRecorder, element: StructElement, inner: Flowable) -> None:
        super().__init__()
        self.recorder, self.element, self.inner = recorder, element, inner

    def wrapOn(self, canv: Canvas, aW: float, aH: float) -> tuple[float, float]:
        self.width, self.height = self.inner.wrapOn(canv, aW, aH)
        return self.width, self.height

    def wrap(self, aW: float, aH: float) -> tuple[float, float]:
        self.width, self.height = self.inner.wrap(aW, aH)
        return self.width, self.height

    def split(self, aW: float, aH: float) -> list[Flowable]:
        return [Tagged(self.recorder, self.element, part) for part in self.inner.split(aW, aH)]

    def splitOn(self, canv: Canvas, aW: float, aH: float) -> list[Flowable]:
        return [Tagged(self.recorder, self.element, part) for part in self.inner.splitOn(canv, aW, aH)]

    def getSpaceBefore(self) -> float:
        return self.inner.getSpaceBefore()

    def getSpaceAfter(self) -> float:
        return self.inner.getSpaceAfter()

    def getKeepWithNext(self) -> bool:
        return bool(self.inner.getKeepWithNext())

    def drawOn(self, canvas: Canvas, x: float, y: float, _sW: float = 0) -> None:
        self.recorder.begin(canvas, self.element)
        self.inner.drawOn(canvas, x, y, _sW)
        self.recorder.end(canvas)


class _TableTagger:
    """reportlab's table render callback (``renderCB``): events startTable, startBG/endBG,
    startRow/endRow, startCell/endCell, startLines/endLines, endTable, for every part of a table
    split over pages. A header row drawn again on a continuation page is a pagination artifact."""

    def __init__(
        self, recorder: TagRecorder, table: StructElement | None, header_rows: int, header_columns: int
    ) -> None:
        self.recorder, self.table = recorder, table
        self.header_rows, self.header_columns = header_rows, header_columns
        self._first_part: Table | None = None
        self._row: StructElement | None = None
        self._repeated_row = False

    def __call__(self, table: Table, event: str, *args: Any) -> None:
        canvas = table.canv
        if event in ("startBG", "startLines"):
            self.recorder.begin_artifact(canvas)
        elif event in ("endBG", "endLines"):
            self.recorder.end(canvas)
        elif self.table is None or event in ("startTable", "endTable"):
            return
        elif event == "startRow":
            self._start_row(table, args[0])
        elif event == "endRow" and self._repeated_row:
            self.recorder.end(canvas)
        elif event == "startCell" and not self._repeated_row:
            self.recorder.begin(canvas, self._cell(args[0], args[1]))
        elif event == "endCell" and not self._repeated_row:
            self.recorder.end(canvas)

    def _start_row(self, table: Table, row: int) -> None:
        if self._first_part is None:
            self._first_part = table
        self._repeated_row = row < self.header_rows and table is not self._first_part
        if self._repeated_row:
            self.recorder.begin_artifact(table.canv, "Pagination")
        else:
            self._row = self.recorder.element("TR", self.table)

    def _cell(self, row: int, column: int) -> StructElement:
        if row < self.header_rows:
            return self.recorder.element("TH", self._row, scope="Column")
        if column < self.header_columns:
            return self.recorder.element("TH", self._row, scope="Row")
        return self.recorder.element("TD", self._row)


# --- writing the structure into the PDF ---------------------------------------------------------


def finish_tagged(
    pdf: bytes,
    recorder: TagRecorder,
    *,
    title: str,
    language: str = LANGUAGE,
    attachments: Mapping[str, bytes] | None = None,
) -> bytes:
    """``pdf`` (drawn with ``recorder``) with its structure tree, marked flag, language, title and
    ``attachments`` (embedded files) written in."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.pdf_header = b"%PDF-1.7"
    root = writer.root_object
    pages = [page.indirect_reference for page in writer.pages]
    root[NameObject("/StructTreeRoot")] = _structure_tree(writer, recorder, pages)
    for index, page in enumerate(writer.pages):
        page[NameObject("/StructParents")] = NumberObject(index)
        page[NameObject("/Tabs")] = NameObject("/S")
    root[NameObject("/MarkInfo")] = DictionaryObject({NameObject("/Marked"): BooleanObject(True)})
    root[NameObject("/Lang")] = TextStringObject(language)
    root[NameObject("/ViewerPreferences")] = DictionaryObject({NameObject("/DisplayDocTitle"): BooleanObject(True)})
    root[NameObject("/Metadata")] = writer._add_object(_xmp(title, language))
    writer.add_metadata({"/Title": title})
    for name, data in (attachments or {}).items():
        writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _structure_tree(writer: PdfWriter, recorder: TagRecorder, pages: list[IndirectObject]) -> IndirectObject:
    tree = DictionaryObject({NameObject("/Type"): NameObject("/StructTreeRoot")})
    tree_ref = writer._add_object(tree)
    parents: dict[int, dict[int, IndirectObject]] = {}
    document = _element(writer, recorder.document, tree_ref, pages, parents)
    tree[NameObject("/K")] = ArrayObject([document])
    nums = ArrayObject()
    for page in range(len(pages)):
        owners = parents.get(page, {})
        nums += [NumberObject(page), ArrayObject(owners[mcid] for mcid in range(len(owners)))]
    tree[NameObject("/ParentTree")] = writer._add_object(DictionaryObject({NameObject("/Nums"): nums}))
    tree[NameObject("/ParentTreeNextKey")] = NumberObject(len(pages))
    return tree_ref


def _element(
    writer: PdfWriter,
    element: StructElement,
    parent: IndirectObject,
    pages: list[IndirectObject],
    parents: dict[int, dict[int, IndirectObject]],
) -> IndirectObject:
    node = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/StructElem"),
            NameObject("/S"): NameObject(f"/{element.role}"),
            NameObject("/P"): parent,
        }
    )
    ref = writer._add_object(node)
    marked = [kid for kid in element.kids if isinstance(kid, MarkedContent)]
    home = marked[0].page if marked else None
    if home is not None:
        node[NameObject("/Pg")] = pages[home]
    kids = ArrayObject()
    for kid in element.kids:
        if isinstance(kid, StructElement):
            if kid.has_content():
                kids.append(_element(writer, kid, ref, pages, parents))
            continue
        parents.setdefault(kid.page, {})[kid.mcid] = ref
        kids.append(NumberObject(kid.mcid) if kid.page == home else _reference(kid, pages))
    node[NameObject("/K")] = kids
    _attributes(node, element)
    return ref


def _reference(content: MarkedContent, pages: list[IndirectObject]) -> DictionaryObject:
    """A marked-content reference to a page other than the element's own (a split paragraph)."""
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/MCR"),
            NameObject("/Pg"): pages[content.page],
            NameObject("/MCID"): NumberObject(content.mcid),
        }
    )


def _attributes(node: DictionaryObject, element: StructElement) -> None:
    if element.alt is not None:
        node[NameObject("/Alt")] = TextStringObject(element.alt)
    if element.scope is not None:
        node[NameObject("/A")] = DictionaryObject(
            {NameObject("/O"): NameObject("/Table"), NameObject("/Scope"): NameObject(f"/{element.scope}")}
        )


def _xmp(title: str, language: str) -> StreamObject:
    """The XMP metadata packet with the title (dc:title) and language (dc:language)."""
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>'
        f"<dc:language><rdf:Bag><rdf:li>{escape(language)}</rdf:li></rdf:Bag></dc:language>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    stream = StreamObject()
    stream.set_data(packet.encode("utf-8"))
    stream[NameObject("/Type")] = NameObject("/Metadata")
    stream[NameObject("/Subtype")] = NameObject("/XML")
    return stream
