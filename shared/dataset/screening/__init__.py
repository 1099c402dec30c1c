"""Screening uploads for secrets and personal data, inside the one streaming scan.

    policy.py      what to do per category (reject / redact / report): settings and the `screening` key
    kinds.py       each kind: pattern, the check that confirms it (phonenumbers, python-stdnum, ...), mask
    prefilter.py   the cheap first pass over raw lines (Hyperscan): which lines could hold anything
    detect.py      the exact pass over a flagged line's messages, and redaction with typed placeholders
    findings.py    what is reported: masked findings by line and message, counts by kind

Only masked values ever leave this package: findings, errors and the report carry `masked`, never a value.
"""

from shared.dataset.screening.findings import SENSITIVE_DATA, Finding
from shared.dataset.screening.policy import (
    ACTIONS,
    CATEGORIES,
    PERSONAL_DATA,
    SECRETS,
    Action,
    Screening,
    ScreeningError,
    parse_action,
    parse_screening,
)

__all__ = ["ACTIONS", "CATEGORIES", "PERSONAL_DATA", "SECRETS", "SENSITIVE_DATA", "Action", "Finding",
           "Screening", "ScreeningError", "parse_action", "parse_screening"]
