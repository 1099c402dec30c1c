"""Finding sensitive values in one message's text, and replacing them with typed placeholders.

Runs only on the messages of a row the prefilter flagged (see `prefilter`), so it is written to be exact,
not fast: each kind's pattern, then its check; overlapping hits keep the first kind found (secrets come
first in `KINDS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.dataset.screening.kinds import BY_NAME, NUMBERS, PATTERNED, Kind, number_kind


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


def find(text: str) -> list[Hit]:
    """Every sensitive value in `text`, in order, none overlapping another."""
    hits: list[Hit] = []
    for kind in PATTERNED:
        for match in kind.pattern.finditer(text):
            hit = _iban(match) if kind.name == "iban" else _hit(kind, match, text)
            if hit is not None:
                hits.append(hit)
    for match in NUMBERS.finditer(text):
        run, at = match.group(), match.start()
        if run.startswith("(") and ")" not in run:  # "(400-08-1184)": the parenthesis is not the number's
            run, at = run[1:], at + 1
        hits += [hit for hit in _numbers(run, at) if not _version(hit, text)]
    hits.sort(key=lambda h: (h.start, -h.end))
    kept: list[Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def _hit(kind: Kind, match: re.Match[str], text: str) -> Hit | None:
    value = match.group(kind.group)
    if not kind.check(value, match, text):
        return None
    return Hit(kind, match.start(kind.group), match.end(kind.group), value)


def _iban(match: re.Match[str]) -> Hit | None:
    """The longest checksum-valid IBAN the match starts with (words in capitals may follow one)."""
    text = match.group()
    for end in range(len(text), 14, -1):
        value = text[:end]
        if (end == len(text) or text[end] == " ") and BY_NAME["iban"].check(value, match, text):
            return Hit(BY_NAME["iban"], match.start(), match.start() + end, value)
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
