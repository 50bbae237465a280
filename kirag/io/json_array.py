"""Streaming a JSON array of objects (HotpotQA / 2WikiMultiHopQA files are single arrays of
hundreds of MB): one element at a time, never the whole file as Python objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from kirag.errors import InputError
from kirag.io.lines import open_binary

CHUNK_CHARS = 1 << 20
_WHITESPACE = " \t\r\n"


class _Buffer:
    """Decoded text of a file read in chunks, with the line number of its first character."""

    def __init__(self, path: Path) -> None:
        import codecs

        self.path = path
        self._fh = open_binary(path)
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""
        self.line = 1
        self.eof = False

    def more(self, size: int) -> bool:
        """Append about `size` more characters; False at the end of the file."""
        if self.eof:
            return False
        try:
            raw = self._fh.read(size)
        except InputError as exc:  # a corrupt compressed file: reading stopped on this line
            raise InputError(exc.reason, self.path, self.line) from None
        try:
            self.text += self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 ({exc.reason})", self.path, self.line) from None
        self.eof = not raw
        return True

    def consume(self, count: int) -> None:
        self.line += self.text.count("\n", 0, count)
        self.text = self.text[count:]

    def skip_whitespace(self) -> str:
        """The next non-blank character ("" at the end of the file), left in the buffer."""
        while True:
            stripped = self.text.lstrip(_WHITESPACE)
            self.consume(len(self.text) - len(stripped))
            if self.text or not self.more(CHUNK_CHARS):
                return self.text[:1]

    def close(self) -> None:
        self._fh.close()


def iter_json_array(path: str | Path) -> Iterator[tuple[int, object]]:
    """Yield (line where it starts, element) for each element of the JSON array in `path`
    (gzip / bz2 transparently). Malformed JSON or a top level that is not an array is an
    InputError naming the file and line."""
    path = Path(path)
    buffer = _Buffer(path)
    decoder = json.JSONDecoder()
    try:
        if buffer.skip_whitespace() != "[":
            raise InputError("expected a JSON array (a file starting with '[')", path, buffer.line)
        buffer.consume(1)
        first = True
        while True:
            char = buffer.skip_whitespace()
            if char == "]":
                buffer.consume(1)
                if buffer.skip_whitespace():
                    raise InputError("text after the end of the JSON array", path, buffer.line)
                return
            if not first:
                if char != ",":
                    raise InputError("expected ',' or ']' between elements", path, buffer.line)
                buffer.consume(1)
                buffer.skip_whitespace()
            first = False
            yield buffer.line, _decode_next(buffer, decoder)
    finally:
        buffer.close()


def _decode_next(buffer: _Buffer, decoder: json.JSONDecoder) -> object:
    """The next JSON value in the buffer, reading more of the file while the value is cut off
    (each retry reads as much again as the buffer holds, so a large element costs O(n))."""
    while True:
        try:
            value, end = decoder.raw_decode(buffer.text)
        except json.JSONDecodeError as exc:
            if buffer.more(max(CHUNK_CHARS, len(buffer.text))):
                continue
            line = buffer.line + buffer.text.count("\n", 0, exc.pos)
            raise InputError(f"malformed JSON ({exc.msg})", buffer.path, line) from None
        # a number or literal may continue in the next chunk: decide with more text
        if end == len(buffer.text) and not buffer.eof and buffer.more(CHUNK_CHARS):
            continue
        buffer.consume(end)
        return value
