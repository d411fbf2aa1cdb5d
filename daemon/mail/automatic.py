"""Recognises automatic mail (auto-replies, bounces, lists) that must never be answered (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from daemon.mail.parsing import Inbound

_PRECEDENCE_AUTOMATIC = {"bulk", "junk", "list"}


def automatic_signal(
    inbound: Inbound, noreply_patterns: Iterable[str], own_domains: Iterable[str]
) -> str | None:
    """Why this mail is automatic, or None when a person wrote it."""
    headers = inbound.headers
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _PRECEDENCE_AUTOMATIC:
        return f"Precedence: {precedence}"
    if "x-auto-response-suppress" in headers:
        return "X-Auto-Response-Suppress present"
    list_headers = sorted(name for name in headers if name.startswith("list-"))
    if list_headers:
        return f"mailing-list header {list_headers[0]}"
    if "return-path" in headers and headers["return-path"].replace(" ", "") in ("<>", ""):
        return "empty Return-Path (a bounce)"
    if inbound.content_type == "multipart/report":
        return "delivery or read report (multipart/report)"
    for pattern in noreply_patterns:
        if re.search(pattern, inbound.from_address, re.IGNORECASE):
            return f"automatic sender {inbound.from_address}"
    domains = {d.lower() for d in own_domains}
    if inbound.message_id:
        domain = inbound.message_id.strip("<>").rpartition("@")[2].lower()
        if domain in domains:
            return "came back from buzon's own Message-ID domain"
    return None
