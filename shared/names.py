"""Safe names derived from untrusted upload names: for blobs we write and for files on local disk.

An upload's name is chosen by whoever uploads it. Before it becomes part of another blob's name or a local
path it loses traversal (`..`, absolute paths, backslashes), control characters, and anything outside a
small portable alphabet; long names are shortened. Whenever the result differs from the input, a short hash
of the original is appended so two different uploads never collide on one safe name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_SEGMENT = 100  # well under the 255-byte file-name limit of common filesystems
MAX_SEGMENTS = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


def _ascii(text: str) -> str:
    """Accented Latin letters keep their base letter (café -> cafe); other characters become '_'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _segment(raw: str) -> str:
    clean = _UNSAFE.sub("_", _ascii(raw)).strip("._") or ""
    if clean.split(".")[0].upper() in _WINDOWS_RESERVED:
        clean = "_" + clean
    if len(clean) > MAX_SEGMENT:
        stem, dot, ext = clean.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 10 else ""
        keep = MAX_SEGMENT - (len(ext) + 1 if ext else 0)
        clean = (stem if ext else clean)[:keep].rstrip("._") + (f".{ext}" if ext else "")
    return clean


def _segments(name: str) -> list[str]:
    parts = [_segment(p) for p in re.split(r"[/\\]+", name) if p not in ("", ".", "..")]
    return [p for p in parts if p][-MAX_SEGMENTS:]


def _fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_blob_name(name: str) -> str:
    """A blob name made from `name` that is safe to write under another container or prefix.

    Keeps the folder structure (cleaned, at most 8 levels); never empty; never starts with '/' or contains
    '..'; ASCII letters, digits, '.', '_', '-' only. If anything had to change, `~<8 hex>` of the original
    name's hash goes before the extension, so different uploads stay apart.
    """
    parts = _segments(name) or ["upload"]
    joined = "/".join(parts)
    if joined != name:
        stem, dot, ext = parts[-1].rpartition(".")
        tag = f"~{_fingerprint(name)}"
        parts[-1] = f"{stem}{tag}.{ext}" if dot and stem else f"{parts[-1]}{tag}"
    return "/".join(parts)


MAX_BLOB_NAME = 1024  # Azure Storage's limit, in characters


def name_problem(name: str) -> str | None:
    """Why the app will not take an upload called `name`, or None when it will.

    Control characters (and lone surrogates) have no business in a file name: they break the emulator's
    listings and would reach terminals and pages as raw bytes. Such an upload is refused as a whole, by name,
    before any of it is read.
    """
    odd = [c for c in name if unicodedata.category(c) in ("Cc", "Cs")]
    if odd:
        shown = ", ".join(sorted({repr(c) for c in odd}))
        return f"the name holds control character(s) {shown}; rename the file and upload it again"
    if not name.strip("/") or len(name) > MAX_BLOB_NAME:
        return f"the name must be 1 to {MAX_BLOB_NAME} characters long"
    return None


def printable(name: str) -> str:
    """`name` with control characters escaped, for logs, alerts, ledger records and pages."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in ("Cc", "Cs")
                   else c for c in name)
