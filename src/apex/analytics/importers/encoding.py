"""Files that are not UTF-8: recognised and read as UTF-8, or refused with their encoding named.

Spreadsheets still save CSV in the system's legacy code page (Windows-1252, Shift JIS, ...) or
in UTF-16. The readers all read UTF-8, so such a file is decoded once, as it streams, into a
UTF-8 copy; when its encoding cannot be recognised, or the file stops decoding in the one that
was, the upload is refused with a message that says how to re-save it.
"""

from __future__ import annotations

import codecs
import tempfile
from typing import BinaryIO

from charset_normalizer import from_bytes

from apex.analytics.importers.base import UnreadableFile

COPY_CHUNK_BYTES = 1_048_576
# a copy this small stays in memory; a larger one goes to a temporary file
MEMORY_COPY_BYTES = 16 * 1_048_576
RESAVE = (
    'Re-save it as UTF-8 (in Excel: File > Save As > "CSV UTF-8"; in a text editor: '
    "save with the encoding UTF-8) and upload it again."
)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# how many lines of the sample must fail to read as UTF-8 for the file to be taken for a
# code page
_LEGACY_LINES = 2
# the encodings spreadsheets save text in most, most common first (charset-normalizer's names)
_COMMON = (
    "utf_16",
    "utf_32",
    "cp1252",
    "cp932",
    "gb18030",
    "big5",
    "euc_kr",
    "cp1251",
    "cp1250",
    "iso8859_15",
    "latin_1",
)


def _is_utf8(head: bytes) -> bool:
    """UTF-8 throughout, a character cut at the end of the sample aside."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
    return True


def _legacy_text(head: bytes) -> bool:
    """Text in a single- or double-byte code page: several lines that are not UTF-8 and none
    that is UTF-8 beyond ASCII. One stray byte in a UTF-8 file is not that: its line alone is
    refused, by the reader."""
    lines = [line for line in head.split(b"\n") if not line.isascii()]
    invalid = sum(not _is_utf8(line) for line in lines)
    return invalid >= _LEGACY_LINES and invalid == len(lines)


def _needs_decoding(head: bytes) -> bool:
    """In a code page, or UTF-16 (whose ASCII text is valid UTF-8 with a NUL after every
    byte)."""
    return (
        head.startswith(_UTF16_BOMS)
        or (b"\x00" in head and head.count(b"\x00") * 4 >= len(head))
        or (not _is_utf8(head) and _legacy_text(head))
    )


def _encoding_of(head: bytes) -> str | None:
    """The encoding charset-normalizer finds for the sample, or None when it finds none.

    A short sample of Latin text decodes equally well in several code pages (`café` is the
    same bytes in Windows-1252 and in Baltic cp775): among the ones that fit it best, the most
    common one is taken."""
    matches = list(from_bytes(head))
    if not matches or matches[0].encoding in ("utf_8", "ascii"):
        return None
    fitting = [match.encoding for match in matches if match.chaos <= matches[0].chaos]
    return next((name for name in _COMMON if name in fitting), str(matches[0].encoding))


def utf8_stream(stream: BinaryIO, head: bytes) -> BinaryIO:
    """`stream` itself when its first bytes, `head`, are UTF-8 (or binary, for the readers to
    refuse), else a UTF-8 copy of it. Either is positioned at the start."""
    if not head or not _needs_decoding(head):
        return stream
    encoding = _encoding_of(head)
    if encoding is None:
        if b"\x00" in head:
            return stream  # binary: the format check names it so
        raise UnreadableFile(
            f"The file is not UTF-8 text and its encoding was not recognised. {RESAVE}",
            code="unsupported_encoding",
        )
    name = codecs.lookup(encoding).name
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    copy = tempfile.SpooledTemporaryFile(max_size=MEMORY_COPY_BYTES)
    offset = 0
    try:
        while chunk := stream.read(COPY_CHUNK_BYTES):
            copy.write(decoder.decode(chunk).encode("utf-8"))
            offset += len(chunk)
        copy.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeDecodeError as exc:
        copy.close()
        raise UnreadableFile(
            f"The file is not UTF-8: it reads as {name} until about byte "
            f"{offset + exc.start:,}, which is not {name} either. {RESAVE}",
            code="unsupported_encoding",
            details={"encoding": name, "byte": offset + exc.start},
        ) from None
    copy.seek(0)
    return copy  # type: ignore[return-value]
