"""Finding sensitive values in one message's text, and replacing them with typed placeholders.

Runs only on the messages of a row the prefilter flagged (see `prefilter`), and only for the kinds its bits
point to: each kind's pattern (starting with a literal, which Python's re finds fast), then its check;
overlapping hits keep the first kind found (secrets come first in `KINDS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.dataset.screening.kinds import (
    ALL_HINTS,
    BY_NAME,
    DIGITS,
    EMAIL_DOMAIN,
    NUMBERS,
    PATTERNED,
    Kind,
    number_kind,
)

_PASSWORD, _EMAIL, _IBAN = BY_NAME["password"], BY_NAME["email"], BY_NAME["iban"]
_PASSWORD_ANY_CASE = re.compile(_PASSWORD.pattern.pattern.replace("[a-z0-9+", "[A-Za-z0-9+"), re.IGNORECASE)
_LOCAL_PART = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+\Z", re.ASCII)


@dataclass(frozen=True)
class Hit:
    """A value of `kind` at text[start:end]."""

    kind: Kind
    start: int
    end: int
    value: str

    @property
    def masked(self) -> str:
        """The value masked: what reports, logs and the page may show."""
        return self.kind.mask(self.value)


def find(text: str, hints: int = ALL_HINTS) -> list[Hit]:
    """Every sensitive value in `text`, in order, none overlapping another. `hints`: the prefilter bits of
    its line; only the kinds they point to are looked for."""
    hits: list[Hit] = []
    for kind in PATTERNED:
        if not kind.hint & hints:
            continue
        if kind is _PASSWORD:
            hits += _passwords(text)
        elif kind is _EMAIL:
            hits += _emails(text)
        else:
            for match in kind.pattern.finditer(text):
                if kind.word_start and _glued(text, match.start()):
                    continue
                hit = _iban(match) if kind is _IBAN else _hit(kind, match, text)
                if hit is not None:
                    hits.append(hit)
    if hints & DIGITS:
        for match in NUMBERS.finditer(text):
            run, at = match.group(), match.start()
            if at and text[at - 1] == "(" and ")" in run:  # (415) 555-2671
                run, at = text[at - 1] + run, at - 1
            if at and text[at - 1] == "+":
                run, at = "+" + run, at - 1
            if not _glued(text, at, "+."):
                hits += [hit for hit in _numbers(run, at) if not _version(hit, text)]
    hits.sort(key=lambda h: (h.start, -h.end))
    kept: list[Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def _glued(text: str, at: int, also: str = "") -> bool:
    """A letter, digit or _ (or one of `also`) right before text[at]: the match starts inside a word."""
    if not at:
        return False
    before = text[at - 1]
    return before.isalnum() or before == "_" or before in also


def _hit(kind: Kind, match: re.Match[str], text: str) -> Hit | None:
    start, end = match.span(kind.group)
    value = text[start:end]  # from the text itself: `match` may be over its lowercased copy
    return Hit(kind, start, end, value) if kind.check(value, match, text) else None


def _passwords(text: str) -> list[Hit]:
    """`password=...` assignments, matched on the lowercased text (or case-blind where lowercasing changes
    the text's length)."""
    lowered = text.lower()
    same = len(lowered) == len(text)
    matches = _PASSWORD.pattern.finditer(lowered) if same else _PASSWORD_ANY_CASE.finditer(text)
    found = (_hit(_PASSWORD, m, text) for m in matches)
    return [hit for hit in found if hit is not None]


def _emails(text: str) -> list[Hit]:
    """Addresses found from their `@domain`, then the local part before it."""
    hits = []
    for match in EMAIL_DOMAIN.finditer(text):
        at = match.start()
        local = _LOCAL_PART.search(text, max(0, at - 64), at)
        if local is None:
            continue
        value = text[local.start():match.end()]
        if _EMAIL.check(value, match, text):
            hits.append(Hit(_EMAIL, local.start(), match.end(), value))
    return hits


def _iban(match: re.Match[str]) -> Hit | None:
    """The longest checksum-valid IBAN the match starts with (words in capitals may follow one)."""
    text = match.group()
    for end in range(len(text), 14, -1):
        value = text[:end]
        if (end == len(text) or text[end] == " ") and _IBAN.check(value, match, text):
            return Hit(_IBAN, match.start(), match.start() + end, value)
    return None


_VERSION = re.compile(r"(?:version|release|build|ver\.?|v)\s*$", re.IGNORECASE)


def _version(hit: Hit, text: str) -> bool:
    """A dotted quad that is a version number: `version 2.14.3.1`, `v10.0.19041.1`."""
    return (
        hit.kind.name == "ip_address" and _VERSION.search(text, max(0, hit.start - 12), hit.start) is not None
    )


def _numbers(run: str, at: int) -> list[Hit]:
    """The personal numbers in a run of digits and separators starting at text[at]: the whole run, else
    the longest spans of its space-separated parts that are one (a list of numbers reads as one run)."""
    name = number_kind(run)
    if name is not None:
        return [Hit(BY_NAME[name], at, at + len(run), run)]
    parts, found, i = run.split(" "), [], 0
    starts = [0]
    for part in parts:
        starts.append(starts[-1] + len(part) + 1)
    while i < len(parts):
        for j in range(len(parts), i, -1):
            value = " ".join(parts[i:j])
            whole = j - i == len(parts)  # already tried
            if not whole and value[:1].strip() and value[-1].isdigit() and (name := number_kind(value)):
                found.append(Hit(BY_NAME[name], at + starts[i], at + starts[i] + len(value), value))
                i = j - 1
                break
        i += 1
    return found


def redact(text: str, hits: list[Hit]) -> str:
    """`text` with each hit's value replaced by its kind's placeholder."""
    out, at = [], 0
    for hit in hits:
        out.append(text[at : hit.start])
        out.append(hit.kind.placeholder)
        at = hit.end
    out.append(text[at:])
    return "".join(out)
