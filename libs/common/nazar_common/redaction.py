"""Masking secrets in text and URLs, for logs and for API responses.

A URL carries secrets in two places: its userinfo (``user:PASSWORD@``, or
a token as the user name) and its query or fragment parameters (``token=``,
``sig=``, ``api_key=``...). :func:`mask_url` masks both and keeps the rest
(scheme, host, path), which is what a person needs to recognise the URL.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

MASK = "***"

#: Parameter names that look like they carry a secret (matched anywhere in
#: the name, case-insensitively: ``X-Api-Key``, ``access_token``, ``sig``).
SECRET_NAME_RE = re.compile(
    r"(?i)(token|secret|passw|pwd|key|sig|auth|credential|session|private|code)"
)

#: A URL inside free text (a log message, an error from an HTTP library).
URL_IN_TEXT_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")

#: ``user:password@`` (or ``token@``) after a scheme, for URLs that do not parse.
_USERINFO_RE = re.compile(r"(?<=://)([^:/@\s]*)(:?)[^/@\s]*@")
#: ``name=value`` after ``?``, ``&`` or ``#``.
_PARAM_RE = re.compile(r"([?&#;])([^=&#\s]+)=[^&#\s]*")

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"nzr_[A-Za-z0-9]+_[A-Za-z0-9_-]+"),
    re.compile(r"(?i)((?:password|secret|token|api_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
]


def _mask_params(text: str) -> str:
    """``a=1&token=x`` -> ``a=1&token=***`` (the encoding is kept as sent)."""
    out = []
    for pair in text.split("&"):
        name, eq, _value = pair.partition("=")
        if eq and SECRET_NAME_RE.search(urllib.parse.unquote_plus(name)):
            pair = f"{name}={MASK}"
        out.append(pair)
    return "&".join(out)


def mask_url(url: str) -> str:
    """``url`` with its password (or a user name alone: often a token) and
    its secret-looking query and fragment parameters masked."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[": mask what looks secret, by pattern
        url = _USERINFO_RE.sub(lambda m: f"{m[1]}{m[2]}{MASK}@" if m[2] else f"{MASK}@", url)
        return _PARAM_RE.sub(lambda m: m[0] if not SECRET_NAME_RE.search(m[2]) else
                             f"{m[1]}{m[2]}={MASK}", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    query = _mask_params(parts.query) if parts.query else parts.query
    fragment = _mask_params(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def mask_urls(value: Any) -> Any:
    """``value`` (JSON-like data) with every URL string in it masked."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_urls(v) for v in value]
    return value


def redact(text: str) -> str:
    """Mask API keys, bearer tokens, passwords and URLs' secrets in ``text``."""
    if "://" in text:
        text = URL_IN_TEXT_RE.sub(lambda m: mask_url(m.group(0)), text)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 1:
            text = pattern.sub(r"\1***", text)
        else:
            text = pattern.sub("***", text)
    return text
