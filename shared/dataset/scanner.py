"""The line scanner: validate, measure and key the rows of one stretch of an upload, in bounded memory.

A stretch is the whole file (one pass) or one range of it (a worker's share); either way `Lines` numbers its
lines from 1, screens the rows whose raw lines the screening prefilter flags for secrets and personal data
(`screening`), and hands out what it found as `Tally`s, which `Totals` adds up in file order into the report.
Chunks are split on newlines with the unfinished tail carried over; a line longer than the limit is skipped
up to its newline without ever being held whole.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import orjson

from shared.dataset import rules
from shared.dataset.decoding import TYPED, Entry, line_ends, typed_lines
from shared.dataset.rules import ROLES, Issue
from shared.dataset.screening import SENSITIVE_DATA, Finding, detect
from shared.dataset.screening.findings import describe
from shared.dataset.screening.prefilter import prefilter
from shared.dataset.split import KEY_BYTES
from shared.dataset.tally import Limits, Tally

_ROLE_INDEX = {role: i for i, role in enumerate(ROLES)}
_SYSTEM, _USER, _ASSISTANT, _TOOL = (_ROLE_INDEX[role] for role in ("system", "user", "assistant", "tool"))
BOM = b"\xef\xbb\xbf"
_ROW_START, _ROW_END = b'{"messages":', b"}\n"
_NONE_FLAGGED: Mapping[int, int] = {}


class Lines:
    """Scans one stretch: `feed` takes raw chunks, `take_rows` parsed rows (Parquet), `harvest` hands over
    the tally so far. `at_file_start` strips a UTF-8 byte-order mark (Windows editors write one)."""

    def __init__(self, limits: Limits, *, staging: bool, at_file_start: bool = True) -> None:
        self.limits = limits
        self.staging = staging
        self.line = 0
        self.tail = b""
        self.skipping = False
        self.head: bytes | None = b"" if at_file_start else None
        self.tally = Tally()
        # Screening: the prefilter flags raw lines that may hold a sensitive value; `screened` reads those.
        self.prefilter = prefilter() if limits.screening is not None else None

    # -- findings ---------------------------------------------------------------------------------------
    def error(self, line: int | None, code: str, message: str) -> None:
        t = self.tally
        t.error_count += 1
        if len(t.errors) < self.limits.max_errors_listed:
            t.errors.append(Issue(line, code, message))

    def warn(self, line: int, code: str, message: str) -> None:
        t = self.tally
        t.warning_count += 1
        if len(t.warnings) < self.limits.max_errors_listed:
            t.warnings.append(Issue(line, code, message))

    # -- raw bytes ----------------------------------------------------------------------------------------
    def feed(self, chunk: bytes | bytearray, stop: int | None = None) -> None:
        """Consume the next raw chunk of JSON Lines (its first `stop` bytes: a reused read buffer)."""
        stop = len(chunk) if stop is None else stop
        start = 0
        if self.head is not None:
            if self.head or stop < len(BOM):  # the first bytes arrive in tiny chunks: join them (rare)
                chunk = self._after_bom(bytes(chunk[:stop]))
                stop = len(chunk)
            else:
                self.head = None
                start = len(BOM) if chunk[:len(BOM)] == BOM else 0
        if self.skipping:
            end = chunk.find(b"\n", start, stop)
            if end < 0:
                return
            start, self.skipping = end + 1, False
        last = chunk.rfind(b"\n", start, stop)
        if last < 0:
            self.tail += chunk[start:stop]
        else:
            if self.tail:  # the line the tail began ends in this chunk
                first = chunk.find(b"\n", start, stop)
                line = self.tail + chunk[start:first]
                self.count(self._decoded([line], len(line) > self.limits.max_line_bytes), self._flag(line))
                start = first + 1
            if last >= start:
                self._body(chunk, start, last + 1)
            self.tail = bytes(chunk[last + 1:stop])
        if len(self.tail) > self.limits.max_line_bytes:
            self.line += 1
            self._too_long(self.line)
            self.tail, self.skipping = b"", True

    def _body(self, chunk: bytes | bytearray, start: int, end: int) -> None:
        """The complete lines in chunk[start:end] (which ends with a newline).

        Fast path: the C decoder reads them all as the common row shape at once (no line objects); it is
        taken when no line can be too long, every line decoded, and each line is one object (see
        `decoding.line_ends`). Anything else goes line by line, where every rule is worded.
        """
        long = end - start > self.limits.max_line_bytes
        if not long:
            with contextlib.suppress(msgspec.MsgspecError):
                rows = TYPED.decode_lines(memoryview(chunk)[start:end])
                ends = line_ends(chunk, start, end)
                if ends is not None and len(rows) == len(ends):
                    self.count(typed_lines(rows, chunk, start, ends), self._flagged(chunk, start, end, ends))
                    return
        self.count(self._decoded(bytes(memoryview(chunk)[start:end - 1]).split(b"\n"), long),
                   self._flagged(chunk, start, end))

    def _flagged(self, chunk: bytes | bytearray, start: int, end: int,
                 ends: list[int] | None = None) -> Mapping[int, int]:
        """{line number: prefilter bits} of the lines in chunk[start:end] the screening prefilter flags."""
        if self.prefilter is None:
            return _NONE_FLAGGED
        first = self.line + 1
        return {first + index: bits for index, bits in self.prefilter.lines(chunk, start, end, ends).items()}

    def _flag(self, line: bytes) -> Mapping[int, int]:
        """{the next line's number: its bits} if the prefilter flags this raw line."""
        bits = self.prefilter.line(line) if self.prefilter is not None else 0
        return {self.line + 1: bits} if bits else _NONE_FLAGGED

    def _after_bom(self, chunk: bytes) -> bytes:
        """The chunk without a leading byte-order mark, however the first bytes were chunked."""
        head = (self.head or b"") + chunk
        if len(head) < len(BOM) and BOM.startswith(head):
            self.head = head  # too short to tell yet
            return b""
        self.head = None
        return head[len(BOM):] if head.startswith(BOM) else head

    def finish(self) -> Tally:
        """The stretch has ended: take its unterminated last line, and hand over the final tally."""
        if self.head:  # the whole stretch was a prefix of a byte-order mark
            self.tail, self.head = self.head, None
        if self.tail:
            self.count(self._decoded([self.tail], True), self._flag(self.tail))
            self.tail = b""
        tally = self.harvest()
        tally.done = True
        return tally

    def harvest(self) -> Tally:
        """What was found since the last harvest; the scanner goes on counting lines where it was."""
        tally, self.tally = self.tally, Tally()
        tally.lines = self.line
        return tally

    def _too_long(self, line: int) -> None:
        self.error(line, rules.LINE_TOO_LONG, f"the line is longer than {self.limits.max_line_bytes:,} "
                   "bytes; split the conversation or shorten it")

    def unparsable(self, number: int, line: bytes, exc: Exception) -> None:
        if not line.strip():
            return  # blank lines (and a lone CR) are allowed
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            self.error(number, rules.NOT_UTF8, f"the line is not valid UTF-8 (byte {bad.start + 1}); "
                       "save the file as UTF-8")
            return
        self.error(number, rules.INVALID_JSON, f"the line is not valid JSON: {exc}")

    def _decoded(self, lines: Iterable[bytes], may_be_long: bool) -> Iterator[Entry]:
        """Each raw line decoded: typed when it has the common shape, else as plain JSON; None for a blank
        line, or a broken one (its error noted). Lines are numbered on from `self.line`."""
        loads, decode_error, max_bytes = orjson.loads, orjson.JSONDecodeError, self.limits.max_line_bytes
        typed_decode, not_typed = TYPED.decode, msgspec.MsgspecError
        number = self.line
        for line in lines:
            number += 1
            entry: Entry = None
            if may_be_long and len(line) > max_bytes:
                self._too_long(number)
            else:
                try:
                    # The common shape decodes straight into typed structs: the C decoder checks roles,
                    # string contents and message keys, and builds no dicts. Anything else (and every
                    # error) takes the general path, which applies and words every rule.
                    entry = typed_decode(line), True, line
                except not_typed:
                    try:
                        entry = loads(line), False, line
                    except decode_error as exc:
                        self.unparsable(number, line, exc)
            yield entry

    def take_rows(self, rows: Iterable[Any]) -> None:
        """Check, count and key rows that are already parsed (Parquet), numbered on from `self.line`."""
        self.count((row, False, None) for row in rows)

    # -- parsed rows --------------------------------------------------------------------------------------
    def count(self, entries: Iterable[Entry], flagged: Mapping[int, int] = _NONE_FLAGGED) -> None:
        """Check, count and key decoded rows, one entry per line (None: a line with no row). `flagged`: the
        lines the screening prefilter flagged, with its bits (a row with no raw line is read for every kind).

        This is the hot loop, so it is written for speed: the common row shape (messages with only a role and
        a non-blank string content) is checked inline and the figures live in locals; any other row goes
        through `checked`, which applies every rule.
        """
        loads, encode, dumps = orjson.loads, msgspec.json.encode, orjson.dumps
        number = self.line
        t = self.tally
        all_users = all_assistants = all_systems = all_messages = 0  # roles of the rows accepted inline
        add_key, add_tokens, add_end, staged = t.keys.append, t.tokens.append, t.ends.append, t.staged
        extend = staged.extend
        crc, key_bytes = zlib.crc32, KEY_BYTES  # split_key, inlined: no Python call per row
        staging = self.staging
        screening = self.prefilter is not None
        limit = self.limits.token_limit_per_conversation
        fig = t.figures
        count, total_messages, total_chars, total_tokens = fig.rows, fig.messages, fig.chars, fig.tokens
        min_messages, max_messages, min_tokens, max_tokens = (fig.min_messages, fig.max_messages,
                                                              fig.min_tokens, fig.max_tokens)
        for entry in entries:
            number += 1
            if entry is None:
                continue
            row, typed, raw = entry
            chars = users = assistants = systems = 0
            tools = None
            try:
                if typed:
                    if row.tools is not None:
                        raise TypeError
                    messages = row.messages
                    for m in messages:
                        content = m.content
                        if not content or content.isspace():
                            raise TypeError
                        chars += len(content)
                        role = m.role  # the decoder allows only the four roles
                        if role == "user":
                            users += 1
                        elif role == "assistant":
                            assistants += 1
                        elif role == "system":
                            systems += 1
                    first_role = messages[0].role
                else:
                    messages = row["messages"]
                    if "tools" in row:
                        raise TypeError
                    for m in messages:
                        content = m["content"]
                        # `content.isspace` raises for a non-string, which sends the row to `checked`
                        if len(m) != 2 or not content or content.isspace():
                            raise TypeError
                        chars += len(content)
                        role = m["role"]
                        if role not in _ROLE_INDEX:  # also raises TypeError for an unhashable role
                            raise TypeError
                        users += role == "user"
                        assistants += role == "assistant"
                        systems += role == "system"
                    first_role = messages[0]["role"]
                if not assistants or type(messages) is not list:
                    raise TypeError
                n = len(messages)
                all_users, all_assistants, all_systems = (all_users + users, all_assistants + assistants,
                                                          all_systems + systems)
                all_messages += n
                has_user, misplaced = users > 0, systems > (first_role == "system")
            except (TypeError, KeyError, AttributeError, IndexError):
                found = self.checked(number, loads(raw or b"") if typed else row)  # counts its roles
                if found is None:
                    continue
                messages, chars, has_user, misplaced, tools = found
                n = len(messages)
            tokens = (chars + 3) // 4 + 4 * n + 3  # rules.estimate_tokens, inlined (a test keeps them equal)
            count += 1
            total_messages += n
            total_chars += chars
            total_tokens += tokens
            if n < min_messages:
                min_messages = n
            if n > max_messages:
                max_messages = n
            if tokens < min_tokens:
                min_tokens = tokens
            if tokens > max_tokens:
                max_tokens = tokens
            if tokens > limit or not has_user or misplaced:
                self.row_warnings(number, tokens, has_user, misplaced)
            hints = flagged.get(number, 0) if raw is not None else screening and self._row_hints(messages)
            redacted = self.screened(number, messages, hints) if hints else None
            # Serialize only what is needed: the staged row, or the split key of a row without a raw line.
            canonical = (encode if typed else dumps)(messages) if staging or raw is None else b""
            keyed = raw or canonical
            add_key(crc(keyed[:key_bytes], len(keyed)))
            # Training truncates long conversations, so they are billed up to the limit (OpenAI's cookbook).
            add_tokens(tokens if tokens < limit else limit)
            if staging:
                if redacted is not None:  # the split key stays the original's; the staged row is redacted
                    canonical = (encode if typed else dumps)(redacted)
                extend(_ROW_START)
                extend(canonical)
                if tools:
                    extend(b',"tools":' + dumps(tools))
                extend(_ROW_END)
                add_end(len(staged))
        self.line = number
        roles = t.roles
        roles[_SYSTEM] += all_systems
        roles[_USER] += all_users
        roles[_ASSISTANT] += all_assistants
        roles[_TOOL] += all_messages - all_users - all_assistants - all_systems
        fig.rows, fig.messages, fig.chars, fig.tokens = count, total_messages, total_chars, total_tokens
        fig.min_messages, fig.max_messages, fig.min_tokens, fig.max_tokens = (min_messages, max_messages,
                                                                              min_tokens, max_tokens)

    def _row_hints(self, messages: list[Any]) -> int:
        """The prefilter's bits for a row with no raw line (Parquet): read from its messages as JSON."""
        assert self.prefilter is not None
        return self.prefilter.line(orjson.dumps(messages))

    def screened(self, number: int, messages: list[Any], hints: int) -> list[Any] | None:
        """Record the sensitive values in a row's messages (of the kinds the prefilter's `hints` point to),
        and an error for each one whose category is rejected; the messages with the values to redact
        replaced, or None when nothing is redacted."""
        t, policy, listed = self.tally, self.limits.screening, self.limits.max_findings_listed
        assert policy is not None
        redacted: list[Any] | None = None
        for index, message in enumerate(messages, 1):
            content = message.get("content") if isinstance(message, dict) else message.content
            if not isinstance(content, str):
                continue  # a tool call's empty content
            hits, replace = detect.find(content, hints), []
            for hit in hits:
                kind, action, masked = hit.kind, policy.action(hit.kind.category), hit.masked
                t.finding_count += 1
                t.by_kind[kind.name] = t.by_kind.get(kind.name, 0) + 1
                if len(t.findings) < listed:
                    t.findings.append(Finding(number, index, kind.name, kind.category, masked, kind.severity))
                if action == "redact":
                    replace.append(hit)
                elif action == "reject":
                    self.error(number, SENSITIVE_DATA, f"message {index}: {describe(kind.name)} {masked}; "
                               f"{describe(kind.category)} are rejected (SCREEN_{kind.category.upper()}, "
                               "or a manifest's \"screening\"): remove it (and revoke a secret), or choose "
                               "redact or report")
            if replace:
                redacted = list(messages) if redacted is None else redacted
                text = detect.redact(content, replace)
                redacted[index - 1] = {**message, "content": text} if isinstance(message, dict) else \
                    msgspec.structs.replace(message, content=text)
                t.redacted += len(replace)
        return redacted

    def checked(self, number: int, row: Any) -> tuple[list[Any], int, bool, bool, Any] | None:
        """Apply every rule to a row: the hot loop's figures (and the row's tools) when it is a training
        row; None (and an error, or a warning for a row with nothing to learn) if not."""
        broken = rules.check_row(row) or self.unsupported(row)
        if broken:
            self.error(number, *broken)
            return None
        messages = row["messages"]
        if self.limits.weights == "honour":
            learned = rules.learned_turns(messages)
            if not learned:
                self.tally.untrained += 1
                self.warn(number, rules.NOTHING_TO_LEARN, "every assistant turn has \"weight\": 0, so "
                          "there is nothing to learn: the conversation is not a training example")
                return None
            messages = messages[: learned[-1] + 1]  # turns after the last learned one would train nothing
        chars, row_roles = rules.measure(messages)
        tools = row.get("tools")
        if tools:  # the template writes the tools' schemas into every conversation that offers them
            chars += len(orjson.dumps(tools))
        for role in row_roles:
            self.tally.roles[_ROLE_INDEX[role]] += 1
        return messages, chars, "user" in row_roles, "system" in row_roles[1:], tools

    def unsupported(self, row: dict[str, Any]) -> tuple[str, str] | None:
        """What a valid row holds that the platform would not train as written (Limits.weights,
        Limits.tool_calling), as (code, message); None when it trains as written."""
        if not self.limits.tool_calling and rules.uses_tools(row):
            return rules.TOOLS_NOT_SUPPORTED, (
                "tool-calling data (\"tools\", \"tool_calls\" or \"tool\" messages): the platform's "
                "fine-tune pipeline cannot represent it and would flatten it; remove it, or train on the "
                "local engine")
        if self.limits.weights == "refuse" and any(m.get("weight") == 0 for m in row["messages"]):
            return rules.WEIGHT_NOT_HONOURED, (
                "an assistant turn has \"weight\": 0, which the platform's fine-tune pipeline cannot honour "
                "(it would train that turn); drop those turns, or set \"train_weight_zero_turns\": true in "
                "the manifest to train them")
        return None

    def row_warnings(self, number: int, tokens: int, has_user: bool, misplaced: bool) -> None:
        limit = self.limits.token_limit_per_conversation
        if tokens > limit:
            self.tally.over_limit += 1
            self.warn(number, rules.CONVERSATION_TOO_LONG, f"about {tokens:,} tokens, over the "
                      f"{limit:,}-token limit; training truncates it")
        if not has_user:
            self.warn(number, rules.NO_USER_MESSAGE, "the conversation has no user message")
        if misplaced:
            self.warn(number, rules.SYSTEM_NOT_FIRST, "a system message is not the first message")
