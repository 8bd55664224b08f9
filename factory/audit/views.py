"""What other code reads from the audit area: certificate search and checks, device histories
with chain proofs, and exception reports re-derived from the ledger.

The work is done in the helper modules beside this one (``search``, ``certificate_check``,
``history``, ``exceptions``); the API, the pages and the CLI import it from here only, so those
modules can change shape without their callers noticing.
"""

from __future__ import annotations

from factory.audit.certificate_check import CertificateCheck, certificate_pdf, check_certificate, get_certificate
from factory.audit.certificate_view import DESTINATION_CHOICES, LEVEL_CHOICES, Section, certificate_sections
from factory.audit.exceptions import (
    ExceptionReport,
    OutOfCustody,
    Violation,
    WaveCertificates,
    certificates_by_wave,
    exception_report,
    out_of_custody,
    uncertified_departures,
)
from factory.audit.history import DeviceHistory, EntryProof, device_history
from factory.audit.open_failures import OpenFailure, failures_without_reerase
from factory.audit.search import (
    CertificateQuery,
    ErasureOutcome,
    Outcome,
    SearchPage,
    parse_bound,
    search_certificates,
    search_json,
    search_json_async,
)
from factory.audit.search_reader import AsyncSearchReader, search_reader
from factory.audit.summary import Summary, SummaryCertificate, summarise
from factory.audit.summary_pdf import summary_pdf

__all__ = [
    "DESTINATION_CHOICES",
    "LEVEL_CHOICES",
    "AsyncSearchReader",
    "CertificateCheck",
    "CertificateQuery",
    "DeviceHistory",
    "EntryProof",
    "ErasureOutcome",
    "ExceptionReport",
    "OpenFailure",
    "OutOfCustody",
    "Outcome",
    "SearchPage",
    "Section",
    "Summary",
    "SummaryCertificate",
    "Violation",
    "WaveCertificates",
    "certificate_pdf",
    "certificate_sections",
    "certificates_by_wave",
    "check_certificate",
    "device_history",
    "exception_report",
    "failures_without_reerase",
    "get_certificate",
    "out_of_custody",
    "parse_bound",
    "search_certificates",
    "search_json",
    "search_json_async",
    "search_reader",
    "summarise",
    "summary_pdf",
    "uncertified_departures",
]
