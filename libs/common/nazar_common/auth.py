"""API keys: generation, hashing and scope rules.

A key looks like ``nzr_<id>_<secret>``. Only the id and the SHA-256 of the
secret are stored; the secret has 256 bits of entropy, so a fast hash is the
right tool (as for GitHub or Stripe tokens) and verification stays cheap on
the ingest hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"
    #: Create, change and delete alert rules (and read): what the Kubernetes
    #: operator needs, without keys, channels or silences.
    RULES = "rules"


#: What each scope grants: admin implies every other; rules implies read.
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.INGEST: frozenset({Scope.INGEST}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.READ, Scope.INGEST, Scope.RULES}),
    Scope.RULES: frozenset({Scope.RULES, Scope.READ}),
}


def grants(held: frozenset[Scope] | set[Scope], needed: Scope) -> bool:
    return any(needed in _IMPLIED[s] for s in held)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_hash: str
    plaintext: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(
        key_id=key_id, secret_hash=hash_secret(secret), plaintext=f"nzr_{key_id}_{secret}"
    )


def split_key(plaintext: str) -> tuple[str, str] | None:
    """Return ``(key_id, secret)`` or None when the string is not a Nazar key."""
    parts = plaintext.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "nzr" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def verify_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
