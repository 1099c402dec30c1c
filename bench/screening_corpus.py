"""A generated corpus for screening's recall and false positives: chat rows with planted values of every kind,
in varied formats and positions, and clean rows of ordinary chat full of numbers that are nothing sensitive.

    rows = planted(seed=1, per_kind=200)      # [(row bytes, kind, message index, value)]
    clean = ordinary(seed=1, rows=2000)       # [row bytes]

Every planted value is valid for its kind (Luhn and IBAN check digits computed, phone numbers checked by
phonenumbers, public IP addresses), so a miss is the scanner's. bench/screening.py prints the table;
tests/unit/test_dataset_screening.py runs it small.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import string

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

_UPPER_DIGITS = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "IT", "NL", "SE", "MX", "ZA", "CA")
_CARDS = (
    ("4", 16),
    ("4", 13),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3530", 16),
    ("36", 14),
    ("62", 16),
)
_IBAN_SHAPES = {
    "DE": "8n10n",
    "GB": "4a14n",
    "FR": "10n11c2n",
    "NL": "4a10n",
    "ES": "20n",
    "IT": "1a10n12c",
    "BE": "12n",
    "CH": "5n12c",
    "PL": "24n",
    "SE": "20n",
}
_TEMPLATES = (
    "My {what} is {v}.",
    "{v}",
    "Here you go: {v}",
    "Sure - use {v} for that.",
    "({v})",
    "{what}: {v}\nThanks!",
    "Line one.\n{v}\nLine three.",
    "Please update it to {v}, thanks",
    '"{v}"',
    "I wrote down {v} yesterday.",
)
_WHAT = {
    "email": "email",
    "phone_number": "number",
    "card_number": "card",
    "iban": "IBAN",
    "ssn": "SSN",
    "ip_address": "IP",
    "password": "login",
}


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _email(rng: random.Random) -> str:
    local = rng.choice(
        [
            _rand(rng, string.ascii_lowercase, rng.randint(3, 10)),
            f"{_rand(rng, string.ascii_lowercase, 4)}.{_rand(rng, string.ascii_lowercase, 6)}",
            f"{_rand(rng, string.ascii_lowercase, 5)}+{_rand(rng, string.ascii_lowercase, 3)}",
            f"{_rand(rng, string.ascii_lowercase, 3)}_{rng.randint(1, 99)}",
        ]
    )
    domain = rng.choice(
        [
            "contoso.com",
            "fabrikam.co.uk",
            "mail.northwind.de",
            "gmail.com",
            "outlook.fr",
            f"{_rand(rng, string.ascii_lowercase, 7)}.io",
        ]
    )
    value = f"{local}@{domain}"
    return value.upper() if rng.random() < 0.1 else value


def _phone(rng: random.Random) -> str:
    while True:
        region = rng.choice(_REGIONS)
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        national = str(example.national_number)
        varied = national[:-3] + _rand(rng, string.digits, 3)
        number = phonenumbers.parse(f"+{example.country_code}{varied}", None)
        if not phonenumbers.is_valid_number(number):
            continue
        if region == "US" and rng.random() < 0.4:  # NANP national forms
            digits = f"{number.national_number}"
            return rng.choice(
                [f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"]
            )
        # National forms outside NANP ("020 7946 0958") are planted too, though screening reads them only
        # with their country code: the table shows what that costs.
        style = rng.choice(
            [
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        )
        return phonenumbers.format_number(number, style)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARDS)
    body = prefix + _rand(rng, string.digits, length - len(prefix) - 1)
    digits = body + luhn.calc_check_digit(body)
    style = rng.choice(["plain", "spaces", "dashes"])
    if style == "plain" or length != 16:
        return digits if style == "plain" or length != 15 else f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return (" " if style == "spaces" else "-").join(groups)


def _iban(rng: random.Random) -> str:
    compact = ""
    while not stdnum_iban.is_valid(compact):  # some countries check their national part too: draw again
        country = rng.choice(list(_IBAN_SHAPES))
        bban = ""
        for count, kind in _parse_shape(_IBAN_SHAPES[country]):
            bban += _rand(
                rng, {"n": string.digits, "a": string.ascii_uppercase, "c": _UPPER_DIGITS}[kind], count
            )
        compact = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
    return compact if rng.random() < 0.4 else " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _parse_shape(shape: str) -> list[tuple[int, str]]:
    parts, number = [], ""
    for c in shape:
        if c.isdigit():
            number += c
        else:
            parts.append((int(number), c))
            number = ""
    return parts


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _ip(rng: random.Random) -> str:
    while True:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global:
            return str(address)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


SECRET_MAKERS = {
    "private_key": lambda rng: (
        f"-----BEGIN {rng.choice(['RSA ', 'EC ', 'OPENSSH ', ''])}PRIVATE KEY-----\n"
        + "\n".join(_rand(rng, _ALNUM + "+/", 64) for _ in range(rng.randint(2, 6)))
        + "\n-----END PRIVATE KEY-----"
    ),
    "aws_access_key": lambda rng: rng.choice(["AKIA", "ASIA"]) + _rand(rng, _UPPER_DIGITS, 16),
    "github_token": lambda rng: rng.choice(["ghp_", "gho_", "ghs_"]) + _rand(rng, _ALNUM, 36),
    "gitlab_token": lambda rng: "glpat-" + _rand(rng, _ALNUM + "_-", 20),
    "slack_token": lambda rng: (
        f"xox{rng.choice('bp')}-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-"
        + _rand(rng, _ALNUM, 24)
    ),
    "stripe_key": lambda rng: rng.choice(["sk_live_", "rk_live_"]) + _rand(rng, _ALNUM, 24),
    "google_api_key": lambda rng: "AIza" + _rand(rng, _ALNUM + "_-", 35),
    "azure_storage_key": lambda rng: (
        "DefaultEndpointsProtocol=https;AccountName="
        + _rand(rng, "abcdefgh", 8)
        + ";AccountKey="
        + base64.b64encode(rng.randbytes(64)).decode()
        + ";EndpointSuffix=core.windows.net"
    ),
    "sas_token": lambda rng: (
        f"https://{_rand(rng, 'abcdefgh', 8)}.blob.core.windows.net/data?sv=2022-11-02"
        "&ss=b&srt=co&sp=rl&se=2026-01-01T00:00:00Z&sig="
        + base64.b64encode(rng.randbytes(32))
        .decode()
        .replace("+", "%2B")
        .replace("/", "%2F")
        .replace("=", "%3D")
    ),
    "jwt": lambda rng: ".".join(
        [
            _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})),
            _b64url(orjson.dumps({"sub": str(rng.randint(1, 10**9)), "name": "x"})),
            _b64url(rng.randbytes(32)),
        ]
    ),
    "password": lambda rng: (
        rng.choice(["password=", "api_key: ", "DB_PASSWORD=", '"secret": "', "token = "])
        + _rand(rng, _ALNUM, rng.randint(4, 8))
        + str(rng.randint(10, 99))
        + _rand(rng, _ALNUM, 6)
    ),
}
PERSONAL_MAKERS = {
    "email": _email,
    "phone_number": _phone,
    "card_number": _card,
    "iban": _iban,
    "ssn": _ssn,
    "ip_address": _ip,
}
MAKERS = {**SECRET_MAKERS, **PERSONAL_MAKERS}


def _row(messages: list[tuple[str, str]]) -> bytes:
    return orjson.dumps({"messages": [{"role": r, "content": c} for r, c in messages]})


def planted(seed: int = 1, per_kind: int = 100) -> list[tuple[bytes, str, int, str]]:
    """Rows with one planted value each: (row, kind, 1-based message index, value), kinds interleaved."""
    rng = random.Random(seed)
    out = []
    for i in range(per_kind):
        for kind, make in MAKERS.items():
            value = make(rng)
            text = rng.choice(_TEMPLATES).format(what=_WHAT.get(kind, "key"), v=value)
            messages = [
                ("user", "Can you help me with my account?"),
                ("assistant", "Of course, what do you need?"),
            ]
            at = rng.randrange(len(messages) + 1)
            messages.insert(at, (rng.choice(["user", "assistant"]) if at else "user", text))
            if i % 7 == 0:
                messages.insert(0, ("system", "You are a helpful support agent."))
                at += 1
            out.append((_row(messages), kind, at + 1, value))
    return out


_ORDINARY = (
    "Your order #{n6} ships on {date} and should arrive by {date2}.",
    "The total is ${price} including tax; you were charged {price2} EUR.",
    "Python {v3} fixed it; upgrade from {v3b}.",
    "Meet me at {hh}:{mm} in room {n3}.",
    "Tracking number {n12}, reference {hex}.",
    "The ticket id is {uuid}.",
    "Build {n7} passed in {n2}.{n1} seconds.",
    "In {year} revenue grew {n2}% to {n6} units.",
    "Call the front desk at extension {n4}.",
    "The answer is {n3} * {n3b} = {n7}.",
    "Set max_tokens: 512 and temperature = 0.7 in the request.",
    "Use the tokenizer: tokens = tokenizer.encode(text) and count them.",
    "Our office is open 9-5, Monday to Friday; version 2.14.3.1 is current.",
    "The password must be at least 12 characters long.",
    "Copy the API key from the portal (never paste it here).",
    "Coordinates: 47.6062, -122.3321; elevation 56 m.",
    "Send it to the support address on our website.",
    "Image sizes: icon@2x.png and logo@3x.png.",
    "Write to someone@example.com for the demo, or test@test.example.",
    "Serial SN-{n10}-{n4} is covered until {date}.",
)


def ordinary(seed: int = 1, rows: int = 1000) -> list[bytes]:
    """Rows of ordinary support chat with numbers of every sort that are nothing sensitive."""
    rng = random.Random(seed)

    def digits(n: int) -> str:
        return str(rng.randint(10 ** (n - 1), 10**n - 1))

    def fill(template: str) -> str:
        return template.format(
            n1=digits(1),
            n2=digits(2),
            n3=digits(3),
            n3b=digits(3),
            n4=digits(4),
            n6=digits(6),
            n7=digits(7),
            n10=digits(10),
            n12=digits(12),
            hh=f"{rng.randint(0, 23):02d}",
            mm=f"{rng.randint(0, 59):02d}",
            date=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            date2=f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/2026",
            year=rng.randint(1990, 2030),
            price=f"{rng.randint(1, 5000)}.{rng.randint(0, 99):02d}",
            price2=f"{rng.randint(1, 900)},{digits(2)}",
            v3=f"3.{rng.randint(8, 14)}.{rng.randint(0, 12)}",
            v3b=f"3.{rng.randint(6, 8)}.{rng.randint(0, 9)}",
            hex=rng.randbytes(16).hex(),
            uuid="-".join(rng.randbytes(n).hex() for n in (4, 2, 2, 2, 6)),
        )

    return [
        _row([("user", fill(rng.choice(_ORDINARY))), ("assistant", fill(rng.choice(_ORDINARY)))])
        for _ in range(rows)
    ]
