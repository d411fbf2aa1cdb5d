"""Who may say what by mail (pure). A From header proves nothing: a command given by
mail (a verdict, an organ's answer, a survey score) counts only when the sender holds
the role, the mail carries the capability buzon issued for that ticket, role and step,
and the agency's border server vouches for the sender's domain.

The capabilities themselves are in daemon.mail.capability.
"""

from __future__ import annotations

from dataclasses import dataclass

import authres

_RESULT_METHODS = ("dmarc", "dkim", "spf")
_FAILING = ("fail", "permerror")


def normalised_address(address: str) -> str:
    """An address as roles are compared: the addr-spec only, lower case, no spaces."""
    return (address or "").strip().lower()


def mailbox_key(address: str) -> str:
    """An address as counted by the acknowledgement caps: lower case, +tag removed."""
    local, _, domain = normalised_address(address).rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else normalised_address(address)


def holds_role(sender: str, role_addresses: list[str] | tuple[str, ...]) -> bool:
    sender = normalised_address(sender)
    return bool(sender) and sender in {normalised_address(a) for a in role_addresses}


# Authentication-Results (RFC 8601) -----------------------------------------------------

@dataclass(frozen=True)
class Vouching:
    vouched: bool
    why: str  # what the border said, or why nothing it said counts


def border_results(trace_fields: tuple[tuple[str, str], ...], authserv_id: str,
                   internal_hops: int) -> list[authres.AuthenticationResultsHeader]:
    """The Authentication-Results the border server itself added (RFC 8601 section 5):
    the ones with its authserv-id above the Received fields of earlier hops. The
    agency's own servers after the border may add `internal_hops` Received fields above
    them; a field lower down with the same authserv-id came with the mail, from whoever
    sent it, and is ignored."""
    received = 0
    found = []
    for name, value in trace_fields:
        if name == "received":
            received += 1
            if received > internal_hops:
                break
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse(
                f"Authentication-Results: {value}")
        except Exception:  # noqa: BLE001 - an unreadable field vouches for nothing
            continue
        if str(parsed.authserv_id).lower() == authserv_id.lower():
            found.append(parsed)
    return found


def _domains(result) -> set[str]:
    names = {("header", "d"), ("header", "from"), ("header", "i"), ("smtp", "mailfrom")}
    domains = set()
    for prop in result.properties:
        if (prop.type, prop.name) in names:
            domains.add(str(prop.value).lower().rpartition("@")[2].lstrip("@"))
    return domains


def vouched_for(trace_fields: tuple[tuple[str, str], ...], authserv_id: str,
                internal_hops: int, domain: str) -> Vouching:
    """Whether the border says dmarc=pass, or dkim=pass aligned with `domain`; a fail
    the border reports for the domain wins over any pass."""
    domain = domain.lower()
    results = [r for header in border_results(trace_fields, authserv_id, internal_hops)
               for r in header.results if r.method in _RESULT_METHODS]
    if not results:
        return Vouching(False, f"no Authentication-Results from {authserv_id}")
    failing = [r for r in results if r.result in _FAILING and
               (r.method == "dmarc" or domain in _domains(r))]
    if failing:
        return Vouching(False, f"{authserv_id} does not vouch for {domain}: it says "
                               f"{failing[0].method}={failing[0].result}")
    for r in results:
        if r.result == "pass" and r.method in ("dmarc", "dkim") and domain in _domains(r):
            return Vouching(True, f"{authserv_id}: {r.method}=pass for {domain}")
    return Vouching(False, f"{authserv_id} does not vouch (dkim/dmarc) for {domain}")
