"""Deterministic names: the same run always gets the same job, model and deployment names.

Determinism is what makes a retried step find its own earlier effect instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata


def upload_key(container: str, name: str, etag: str) -> str:
    """One upload of one blob version (a re-upload of the same name has a new ETag)."""
    return hashlib.sha256(f"{container}/{name}@{etag}".encode()).hexdigest()[:16]


def run_id(content_sha256: str, forced_upload: str | None = None) -> str:
    """Runs are keyed by content; a forced re-run of the same content gets its own id."""
    base = f"run-{content_sha256[:12]}"
    return f"{base}-{forced_upload[:6]}" if forced_upload else base


def job_name(run_id: str, attempt: int = 1) -> str:
    """A retried run is a new job; the first attempt keeps the plain name."""
    return f"ftap-{run_id}" if attempt <= 1 else f"ftap-{run_id}-a{attempt}"


def deployment_name(run_id: str) -> str:
    """Azure ML deployment names: 3-32 chars, a letter first, letters/digits/hyphens."""
    return f"d-{run_id.removeprefix('run-')}"[:32].rstrip("-")


def model_name(base_model: str, dataset_name: str) -> str:
    """`ft-<base>-<dataset>` sanitised to letters, digits, hyphens (both registries accept it)."""
    stem = re.sub(r"\.(jsonl(\.gz)?|json|parquet)$", "", dataset_name.rsplit("/", 1)[-1], flags=re.I)
    # Accented letters keep their base letter (ünï -> uni); when other characters are dropped (emoji,
    # scripts without a Latin form), a short hash of the name keeps two such uploads apart.
    plain = "".join(c for c in unicodedata.normalize("NFKD", stem) if not unicodedata.combining(c))
    kept = re.sub(r"[^A-Za-z0-9]+", "-", plain).strip("-")
    lossy = re.sub(r"[\sA-Za-z0-9._-]", "", plain) != ""
    suffix = f"-{hashlib.sha256(stem.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}" if lossy else ""
    base = re.sub(r"[^A-Za-z0-9]+", "-", base_model or "tiny-chat").strip("-")
    head = re.sub(r"-{2,}", "-", f"ft-{base}-{kept}").strip("-")
    return head[:64 - len(suffix)].rstrip("-") + suffix
