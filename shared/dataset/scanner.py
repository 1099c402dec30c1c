"""One streaming pass over an upload: validate, measure, hash, split and stage, in bounded memory.

Chunks are split on newlines with the unfinished tail carried over; a line longer than the limit is skipped
up to its newline without ever being held whole. The raw bytes are hashed on a background thread (hashlib
releases the GIL), so the hash costs almost no wall time next to the JSON parse.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import orjson

from shared.dataset import rules
from shared.dataset.report import Figures, Report
from shared.dataset.rules import ROLES, Issue
from shared.dataset.sinks import Sink
from shared.dataset.split import KEY_BYTES, Split

MiB = 1024 * 1024
_ROLE_INDEX = {role: i for i, role in enumerate(ROLES)}
_SYSTEM, _USER, _ASSISTANT = _ROLE_INDEX["system"], _ROLE_INDEX["user"], _ROLE_INDEX["assistant"]
_BOM = b"\xef\xbb\xbf"
_ROW_START, _ROW_END = b'{"messages":', b"}\n"


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class _Row(msgspec.Struct):  # other top-level keys (ultrachat's prompt, prompt_id) are fine
    messages: list[_Message]


_TYPED = msgspec.json.Decoder(_Row)


@dataclass(frozen=True)
class Limits:
    """What an upload may be. `epochs` only feeds the token (cost) estimate."""

    max_line_bytes: int = 8 * MiB
    max_errors_listed: int = 20
    token_limit_per_conversation: int = 4096
    test_fraction: float = 0.05
    test_rows_max: int = 1000
    max_tokens_per_run: int | None = None
    epochs: int = 1


class _Scan:
    """The state of one pass. `feed` takes raw chunks; `take` takes one parsed row from any format."""

    def __init__(self, limits: Limits, train: Sink | None, test: Sink | None) -> None:
        self.limits = limits
        self.sinks = (train, test)
        self.split = Split(limits.test_fraction, limits.test_rows_max)
        self.sha = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._hashing: Future[None] | None = None
        self.bytes = 0
        self.line = 0
        self.tail = b""
        self.skipping = False
        self.errors: list[Issue] = []
        self.error_count = 0
        self.warnings: list[Issue] = []
        self.warning_count = 0
        self.roles = [0] * len(ROLES)
        self.figures = Figures()
        self.conversations_over_limit = 0

    # -- findings ---------------------------------------------------------------------------------------
    def error(self, line: int | None, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.limits.max_errors_listed:
            self.errors.append(Issue(line, code, message))

    def warn(self, line: int, code: str, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.limits.max_errors_listed:
            self.warnings.append(Issue(line, code, message))

    # -- raw bytes ----------------------------------------------------------------------------------------
    def hash(self, chunk: bytes) -> None:
        if self._hashing is not None:
            self._hashing.result()
        self._hashing = self._hasher.submit(self.sha.update, chunk)

    def feed(self, chunk: bytes) -> None:
        """Consume the next raw chunk of a JSON Lines upload."""
        self.hash(chunk)
        first = self.bytes == 0
        self.bytes += len(chunk)
        if first and chunk.startswith(_BOM):
            chunk = chunk[3:]  # a UTF-8 byte-order mark from Windows editors is harmless
        if self.skipping:
            end = chunk.find(b"\n")
            if end < 0:
                return
            chunk, self.skipping = chunk[end + 1:], False
        may_be_long = len(chunk) + len(self.tail) > self.limits.max_line_bytes
        lines = chunk.split(b"\n")
        if self.tail:
            lines[0] = self.tail + lines[0]
        self.tail = lines.pop()
        self.lines(lines, may_be_long)
        if len(self.tail) > self.limits.max_line_bytes:
            self.line += 1
            self._too_long(self.line)
            self.tail, self.skipping = b"", True
        self.drain()

    def _too_long(self, line: int) -> None:
        self.error(line, rules.LINE_TOO_LONG, f"the line is longer than {self.limits.max_line_bytes:,} "
                   "bytes; split the conversation or shorten it")

    def lines(self, lines: list[bytes], may_be_long: bool) -> None:
        """Parse, check, count and stage complete lines."""
        self.rows_of(lines, parse=True, may_be_long=may_be_long)

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

    # -- parsed rows --------------------------------------------------------------------------------------
    def rows_of(self, items: Iterable[Any], *, parse: bool, may_be_long: bool = False) -> None:
        """Check, count and stage rows: raw JSON lines when `parse`, else already parsed rows (Parquet).
        Rows are numbered on from `self.line`.

        This is the hot loop, so it is written for speed: the common row shape (messages with only a role and
        a non-blank string content) is checked inline and the figures live in locals; any other row goes
        through `checked`, which applies every rule.
        """
        loads, decode_error, max_bytes = orjson.loads, orjson.JSONDecodeError, self.limits.max_line_bytes
        typed_decode, not_typed, encode = _TYPED.decode, msgspec.MsgspecError, msgspec.json.encode
        number, typed = self.line, False
        raw: bytes | None = None
        row: Any
        roles, role_index, dumps, route = self.roles, _ROLE_INDEX, orjson.dumps, self.split.route
        crc, key_bytes = zlib.crc32, KEY_BYTES  # split_key, inlined: no Python call per row
        staging = self.sinks != (None, None)
        limit = self.limits.token_limit_per_conversation
        fig = self.figures
        count, total_messages, total_chars, total_tokens = fig.rows, fig.messages, fig.chars, fig.tokens
        min_messages, max_messages, min_tokens, max_tokens = (fig.min_messages, fig.max_messages,
                                                              fig.min_tokens, fig.max_tokens)
        for item in items:
            number += 1
            if parse:
                if may_be_long and len(item) > max_bytes:
                    self._too_long(number)
                    continue
                try:
                    # The common shape decodes straight into typed structs: the C decoder checks roles,
                    # string contents and message keys, and builds no dicts. Anything else (and every
                    # error) takes the general path below, which applies and words every rule.
                    row, typed = typed_decode(item), True
                except not_typed:
                    try:
                        row, typed = loads(item), False
                    except decode_error as exc:
                        self.unparsable(number, item, exc)
                        continue
                raw = item
            else:
                row, typed = item, False
            before = roles[:]
            chars = 0
            try:
                if typed:
                    messages = row.messages
                    for m in messages:
                        content = m.content
                        if not content or content.isspace():
                            raise TypeError
                        roles[role_index[m.role]] += 1
                        chars += len(content)
                    first_role = messages[0].role
                else:
                    messages = row["messages"]
                    for m in messages:
                        content = m["content"]
                        # `content.isspace` raises for a non-string, which sends the row to `checked`
                        if len(m) != 2 or not content or content.isspace():
                            raise TypeError
                        roles[role_index[m["role"]]] += 1
                        chars += len(content)
                    first_role = messages[0]["role"]
                if roles[_ASSISTANT] == before[_ASSISTANT] or type(messages) is not list:
                    raise TypeError
                has_user = roles[_USER] > before[_USER]
                misplaced = roles[_SYSTEM] - before[_SYSTEM] > (first_role == "system")
            except (TypeError, KeyError, AttributeError, IndexError):
                roles[:] = before
                found = self.checked(number, loads(raw or b"") if typed else row)
                if found is None:
                    continue
                messages, chars, has_user, misplaced = found
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
            # Serialize only what is needed: the staged row, or the split key of a row without a raw line.
            canonical = (encode if typed else dumps)(messages) if staging or raw is None else b""
            # Training truncates long conversations, so they are billed up to the limit (OpenAI's cookbook).
            keyed = raw or canonical
            route(crc(keyed[:key_bytes], len(keyed)), _ROW_START + canonical + _ROW_END if staging else b"",
                  tokens if tokens < limit else limit)
        self.line = number
        fig.rows, fig.messages, fig.chars, fig.tokens = count, total_messages, total_chars, total_tokens
        fig.min_messages, fig.max_messages, fig.min_tokens, fig.max_tokens = (min_messages, max_messages,
                                                                              min_tokens, max_tokens)

    def checked(self, number: int, row: Any) -> tuple[list[Any], int, bool, bool] | None:
        """Apply every rule to a row: the hot loop's figures when valid; None (and an error) if not."""
        broken = rules.check_row(row)
        if broken:
            self.error(number, *broken)
            return None
        messages = row["messages"]
        chars, row_roles = rules.measure(messages)
        for role in row_roles:
            self.roles[_ROLE_INDEX[role]] += 1
        return messages, chars, "user" in row_roles, "system" in row_roles[1:]

    def row_warnings(self, number: int, tokens: int, has_user: bool, misplaced: bool) -> None:
        limit = self.limits.token_limit_per_conversation
        if tokens > limit:
            self.conversations_over_limit += 1
            self.warn(number, rules.CONVERSATION_TOO_LONG, f"about {tokens:,} tokens, over the "
                      f"{limit:,}-token limit; training truncates it")
        if not has_user:
            self.warn(number, rules.NO_USER_MESSAGE, "the conversation has no user message")
        if misplaced:
            self.warn(number, rules.SYSTEM_NOT_FIRST, "a system message is not the first message")

    def drain(self) -> None:
        """Hand routed rows to the sinks; once the upload is known bad, stop writing and just count."""
        for rows, sink in ((self.split.train, self.sinks[0]), (self.split.test, self.sinks[1])):
            if rows and sink is not None and self.error_count == 0:
                sink.write(b"".join(rows))
            rows.clear()

    # -- end ------------------------------------------------------------------------------------------------
    def finish(self, format: str) -> Report:
        """Flush the tail, settle the split, decide validity, and close or abort the sinks."""
        if self.tail:
            self.lines([self.tail], True)
            self.tail = b""
        if self._hashing is not None:
            self._hashing.result()
        self._hasher.shutdown()
        self.split.finish()
        self.drain()
        if self.figures.rows == 0 and self.error_count == 0:
            self.error(None, rules.EMPTY_FILE, "the upload has no conversations; each line should be "
                       'one JSON object with a "messages" array')
        if self.figures.rows == 1:
            self.warn(1, rules.TOO_FEW_ROWS_TO_SPLIT, "only one conversation: it is used for training and "
                      "there is no test row")
        estimated = self.split.train_tokens * self.limits.epochs
        budget = self.limits.max_tokens_per_run
        if budget is not None and estimated > budget:
            self.error(None, rules.TOKEN_BUDGET_EXCEEDED,
                       f"about {estimated:,} training tokens ({self.split.train_tokens:,} x "
                       f"{self.limits.epochs} epoch(s)) exceed the budget of {budget:,} tokens per run; "
                       "upload fewer or shorter conversations, or raise the budget")
        valid = self.error_count == 0
        for sink in self.sinks:
            if sink is not None:
                sink.close() if valid else sink.abort()
        return self.report(valid, estimated, format)

    def report(self, valid: bool, estimated: int, format: str) -> Report:
        stats = self.figures.stats()
        stats["roles"] = dict(zip(ROLES, self.roles, strict=True))
        stats["epochs"] = self.limits.epochs
        stats["token_estimate"] = "chars/4 + 4 per message + 3"
        stats["conversations_over_token_limit"] = self.conversations_over_limit
        return Report(valid=valid, rows=self.figures.rows, train_rows=self.split.train_rows,
                      test_rows=self.split.test_rows, errors=self.errors, error_count=self.error_count,
                      warnings=self.warnings, warning_count=self.warning_count, stats=stats,
                      content_sha256=self.sha.hexdigest(), estimated_tokens=estimated, bytes=self.bytes,
                      format=format)

    def abort(self) -> None:
        self._hasher.shutdown(cancel_futures=True)
        for sink in self.sinks:
            if sink is not None:
                sink.abort()


def scan(chunks: Iterable[bytes], limits: Limits | None = None, train: Sink | None = None,
         test: Sink | None = None, progress: Callable[[int], None] | None = None) -> Report:
    """Validate, measure, hash, split and stage a JSON Lines upload in one pass over `chunks`.

    Valid rows are staged to `train`/`test` as `{"messages": [...]}` lines; the sinks are closed when the
    upload is valid and aborted when it is not (or when reading fails). `progress` gets the bytes read so
    far after each chunk.
    """
    state = _Scan(limits or Limits(), train, test)
    try:
        for chunk in chunks:
            state.feed(chunk)
            if progress is not None:
                progress(state.bytes)
        return state.finish("jsonl")
    except BaseException:
        state.abort()
        raise
