"""Capabilities carried as Message-IDs (pure). A request buzon sends to whoever must
answer it (a supervisor, an organ, a citizen's survey) has a Message-ID holding a
128-bit secret; every mail client puts it back in In-Reply-To or References when its
user presses Reply. Past the parser the secret exists only as its SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

# <TAG.cap-SECRET@domain>: the tag (template and ticket) only helps a reader.
_CAPABILITY = re.compile(r"^<(?:[^<>\s@]*\.)?cap-([0-9a-f]{32})@[^<>\s]+>$", re.IGNORECASE)
KEPT_PREFIX = "<sha256:"  # how a capability Message-ID is kept
_HASHED = re.compile(r"^<sha256:([0-9a-f]{64})>$")


def new_capability(domain: str, tag: str = "") -> tuple[str, str]:
    """(the Message-ID to send, carrying a fresh secret; the digest to keep)."""
    secret = secrets.token_hex(16)
    return f"<{tag + '.' if tag else ''}cap-{secret}@{domain}>", _digest(secret)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.lower().encode()).hexdigest()


def hashed_id(message_id: str) -> str:
    """A Message-ID as buzon keeps it: a capability's only as `<sha256:DIGEST>`."""
    match = _CAPABILITY.match(message_id.strip())
    return f"{KEPT_PREFIX}{_digest(match.group(1))}>" if match else message_id


def hashed_from_digest(digest: str) -> str:
    return f"{KEPT_PREFIX}{digest}>"


def carried_digests(message_ids: tuple[str, ...]) -> list[str]:
    """Digests of the capabilities among (already hashed) thread Message-IDs."""
    found = [m.group(1) for m in map(_HASHED.match, message_ids) if m]
    return list(dict.fromkeys(found))
