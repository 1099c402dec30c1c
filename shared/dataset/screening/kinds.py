"""What screening looks for in message text: each kind's pattern, the check a match must pass, its mask.

A pattern only proposes; a kind is found when its check passes too: phone numbers must be valid numbers
(`phonenumbers`), cards Luhn-valid with a card network's prefix and length (`python-stdnum`'s Luhn),
IBANs checksum-valid and SSNs plausible (`python-stdnum`), IP addresses public (`ipaddress`), JWTs must
decode, and a `password=` value must look random. The secret formats follow detect-secrets' detectors.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from shared.dataset.screening.policy import PERSONAL_DATA, SECRETS

Check = Callable[[str, "re.Match[str]", str], bool]  # (value, match, whole text) -> is it one


@dataclass(frozen=True)
class Kind:
    """One kind of sensitive value. `group` is the pattern's group holding the value (an assignment keeps
    its key: `password=<SECRET>`); `source` says which library decides it (the README's table)."""

    name: str
    category: str
    pattern: re.Pattern[str]
    check: Check
    mask: Callable[[str], str]
    group: int = 0
    severity: str = "high"
    source: str = "own pattern"
    hint: int = 0  # the prefilter bit that flags a line for this kind
    word_start: bool = False  # the value starts a word (a letter, digit or _ before it: not this kind)

    @property
    def placeholder(self) -> str:
        """What replaces a redacted value: `<EMAIL>`, `<AWS_ACCESS_KEY>`, ..."""
        return f"<{self.name.upper()}>"


def _always(value: str, match: re.Match[str], text: str) -> bool:
    return True


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character (detect-secrets' high-entropy measure)."""
    counts, n = Counter(value), len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_looking(value: str, match: re.Match[str], text: str) -> bool:
    """A `password=` value that is a credential, not a word, a placeholder or code: letters and digits
    mixed, and random enough (placeholders like <PASSWORD> or ${TOKEN} never match the pattern)."""
    has_digit = any(c.isdigit() for c in value)
    has_letter = any(c.isalpha() for c in value)
    return has_digit and has_letter and _entropy(value) >= 3.0


def _jwt(value: str, match: re.Match[str], text: str) -> bool:
    """The header decodes to a JSON object (detect-secrets' JwtTokenDetector checks the same)."""
    header = value.split(".", 1)[0]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(decoded, dict)


def _sas(value: str, match: re.Match[str], text: str) -> bool:
    """A `sig=` that belongs to a SAS URL or token: a signed-version `sv=` comes before it."""
    return "sv=" in text[max(0, match.start() - 500):match.start()]


def _base64_key(value: str, match: re.Match[str], text: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) >= 32
    except binascii.Error:
        return False


_DOC_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606: nobody's address
_DOC_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
_FILE_ENDINGS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "js", "css", "py"})  # icon@2x.png


def _email(value: str, match: re.Match[str], text: str) -> bool:
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    if local.startswith(".") or local.endswith(".") or domain.rsplit(".", 1)[-1] in _FILE_ENDINGS:
        return False
    return not (domain in _DOC_DOMAINS or domain.endswith(_DOC_SUFFIXES)
                or any(domain.endswith("." + d) for d in _DOC_DOMAINS))


# phonenumbers and python-stdnum are imported on the first candidate: most uploads never need them, and every
# scan worker would carry them (stdnum's IBAN checks import a module per country).
def _iban(value: str, match: re.Match[str], text: str) -> bool:
    from stdnum import iban

    return bool(iban.is_valid(value.replace(" ", "")))


# Card networks by prefix and length (ISO/IEC 7812 issuer ranges of the big networks).
_CARD_NETWORKS = (
    (re.compile(r"4"), (13, 16, 19)),                                    # Visa
    (re.compile(r"5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"), (16,)),  # Mastercard
    (re.compile(r"3[47]"), (15,)),                                       # American Express
    (re.compile(r"6011|64[4-9]|65"), (16, 17, 18, 19)),                  # Discover
    (re.compile(r"35(?:2[89]|[3-8]\d)"), (16, 17, 18, 19)),              # JCB
    (re.compile(r"3(?:0[0-5]|[68])"), (14, 15, 16)),                     # Diners Club
    (re.compile(r"62"), (16, 17, 18, 19)),                               # UnionPay
)


def _card_digits(digits: str) -> bool:
    from stdnum import luhn

    return bool(luhn.is_valid(digits)) and any(
        prefix.match(digits) and len(digits) in lengths for prefix, lengths in _CARD_NETWORKS)


def number_kind(value: str) -> str | None:
    """Which personal number a run of digits and separators is, if any: an SSN, an IP address, a card
    number or a phone number (checked in that order; most runs of digits are none of them)."""
    digits = re.sub(r"\D", "", value)
    if _SSN_SHAPE.fullmatch(value):
        from stdnum.us import ssn

        return "ssn" if ssn.is_valid(value) else None
    if _IP_SHAPE.fullmatch(value):
        try:
            return "ip_address" if ipaddress.ip_address(value).is_global else None
        except ValueError:
            return None
    separators = set(value) - set("0123456789")
    if 13 <= len(digits) <= 19 and separators <= {" ", "-"} and _card_digits(digits):
        return "card_number"
    if 7 <= len(digits) <= 15 and _phone(value):
        return "phone_number"
    return None


def _phone(value: str) -> bool:
    """An international number (+...) valid for its country, or a formatted NANP one ((415) 555-2671):
    a bare run of digits is an id or an amount far more often than a phone number."""
    import phonenumbers

    if value.startswith("+"):
        region = None
    elif _NANP_SHAPE.fullmatch(value):
        region = "US"
    else:
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value, region)))
    except phonenumbers.NumberParseException:
        return False


_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_NANP_SHAPE = re.compile(r"(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}")  # (415) 555-2671, 415-555-2671
_IP_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


# -- masks: enough to find the value in the file, never the value ------------------------------------------
def _keep_prefix(value: str, keep: int = 4) -> str:
    return f"{value[:keep]}…({len(value)} chars)"


def _hidden(value: str) -> str:
    return f"…({len(value)} chars)"


def _mask_digits(value: str, keep_last: int) -> str:
    """Every digit but the last `keep_last` as '*', separators kept: +** *** *** **71."""
    total, seen, out = sum(c.isdigit() for c in value), 0, []
    for c in value:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - keep_last else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@***.{domain.rsplit('.', 1)[-1]}"


def _mask_iban(value: str) -> str:
    return value[:2] + re.sub(r"[A-Za-z0-9]", "*", value[2:-2]) + value[-2:]


def _mask_ip(value: str) -> str:
    return value.split(".", 1)[0] + ".*.*.*"


def _mask_private_key(value: str) -> str:
    header = value.split("-----", 2)[1] if value.count("-----") >= 2 else "PRIVATE KEY"
    return f"-----{header}-----…({len(value)} chars)"


_I, _S = re.IGNORECASE, re.DOTALL
# Prefilter bits (see prefilter.GROUPS): which kinds a flagged line is read for.
SECRET_MARK, KEYWORD, AT_SIGN, DIGITS, IBAN_START = 1, 2, 4, 8, 16
# Patterns start with their literal, which Python's re finds fast; the word boundary before it is checked by
# `detect` (`word_start`). The numbers kinds share one pattern (runs of digits and separators) and
# `number_kind` tells them apart; the character before a run is checked by `detect` too.
NUMBERS = re.compile(r"\d[\d \-.()]{5,}\d(?!\w)", re.ASCII)
EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b", re.ASCII)
KINDS: tuple[Kind, ...] = (
    # Secrets (detect-secrets' detectors: PrivateKey, AWSKey, GitHubToken, GitLabToken, Slack, Stripe,
    # AzureStorageKey, JwtToken, Keyword; the Google API key and SAS token formats are documented by Google
    # and Microsoft).
    Kind("private_key", SECRETS, re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY"
        r"(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*)", _S), _always, _mask_private_key, hint=SECRET_MARK,
         source="detect-secrets' PrivateKeyDetector markers"),
    Kind("aws_access_key", SECRETS, re.compile(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b"),
         _always, _keep_prefix, hint=SECRET_MARK, word_start=True, source="detect-secrets' AWSKeyDetector"),
    Kind("github_token", SECRETS,
         re.compile(r"(?:gh[pousr]_[A-Za-z0-9_]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"), _always,
         _keep_prefix, hint=SECRET_MARK, word_start=True, source="detect-secrets' GitHubTokenDetector"),
    Kind("gitlab_token", SECRETS, re.compile(r"gl(?:pat|dt|ptt|rt|cbt|imt|soat|ffct)-[0-9A-Za-z_\-]{20,}"),
         _always, _keep_prefix, hint=SECRET_MARK, word_start=True,
         source="detect-secrets' GitLabTokenDetector"),
    Kind("slack_token", SECRETS, re.compile(
        r"xox[abposr]-(?:\d+-)+[0-9A-Za-z]+|https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+"
        r"/[A-Za-z0-9_]+"), _always, _keep_prefix, hint=SECRET_MARK, word_start=True,
         source="detect-secrets' SlackDetector"),
    Kind("stripe_key", SECRETS, re.compile(r"[rs]k_live_[0-9A-Za-z]{24,99}\b"), _always, _keep_prefix,
         hint=SECRET_MARK, word_start=True, source="detect-secrets' StripeDetector"),
    Kind("google_api_key", SECRETS, re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"), _always,
         _keep_prefix, hint=SECRET_MARK, word_start=True),
    Kind("azure_storage_key", SECRETS,
         re.compile(r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})"), _base64_key, _hidden,
         group=1, hint=SECRET_MARK, word_start=True,
         source="detect-secrets' AzureStorageKeyDetector; base64 decoded"),
    Kind("sas_token", SECRETS, re.compile(r"sig=((?:[A-Za-z0-9+/]|%2[BbFf]){30,}(?:=|%3[Dd]){0,2})"), _sas,
         _hidden, group=1, hint=SECRET_MARK, word_start=True),
    Kind("jwt", SECRETS, re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
         _jwt, lambda v: _keep_prefix(v, 3), hint=SECRET_MARK, word_start=True,
         source="detect-secrets' JwtTokenDetector (the header must decode)"),
    # Matched on the lowercased text (the same length in all but rare scripts, where `detect` falls back to
    # IGNORECASE): an alternation of literals is many times faster than an IGNORECASE one.
    Kind("password", SECRETS, re.compile(
        r"(?:password|passwd|pwd|secret|token|(?:api|auth|access|client|private)[_-]?key)[a-z0-9_]{0,20}"
        r"[\"']? *[:=] *[\"']?([a-z0-9+/=_\-!@#$%^&*.~?]{8,200})"), _random_looking, _hidden, group=1,
         hint=KEYWORD, source="detect-secrets' KeywordDetector keywords, with its entropy measure"),
    # Personal data.
    Kind("email", PERSONAL_DATA, EMAIL_DOMAIN, _email, _mask_email, hint=AT_SIGN),
    Kind("iban", PERSONAL_DATA, re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
         _iban, _mask_iban, hint=IBAN_START, word_start=True,
         source="python-stdnum (stdnum.iban: country length and mod-97)"),
    Kind("ssn", PERSONAL_DATA, NUMBERS, _always, lambda v: _mask_digits(v, 2), hint=DIGITS,
         source="python-stdnum (stdnum.us.ssn)"),
    Kind("card_number", PERSONAL_DATA, NUMBERS, _always, lambda v: _mask_digits(v, 4), hint=DIGITS,
         source="python-stdnum (Luhn) and the card networks' prefixes"),
    Kind("phone_number", PERSONAL_DATA, NUMBERS, _always, lambda v: _mask_digits(v, 2), hint=DIGITS,
         source="phonenumbers (is_valid_number)"),
    Kind("ip_address", PERSONAL_DATA, NUMBERS, _always, _mask_ip, severity="low", hint=DIGITS,
         source="ipaddress (public addresses only)"),
)
BY_NAME = {kind.name: kind for kind in KINDS}
# The kinds with a pattern of their own; the number kinds share NUMBERS and `number_kind` tells them apart.
PATTERNED = tuple(kind for kind in KINDS if kind.pattern is not NUMBERS)
ALL_HINTS = SECRET_MARK | KEYWORD | AT_SIGN | DIGITS | IBAN_START
