"""CSV output that spreadsheets cannot execute, streamed row by row."""
import csv
import io
import re
from collections.abc import Iterable, Iterator

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number, the one kind of dangerous-looking text a spreadsheet reads as a value.
# Shared with the SQL export (analytics.usage.generation_log), so both neutralize exactly the same cells;
# Python's float() would also let through "-inf", "-nan" and "-1_0", which spreadsheets evaluate.
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


def safe_cell(value) -> str:
    """Neutralize a cell a spreadsheet would read as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(DANGEROUS_PREFIXES) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def csv_stream(header: Iterable[str], rows: Iterable[Iterable], *, batch: int = 1000) -> Iterator[str]:
    """Yield CSV text a batch of rows at a time (for StreamingHttpResponse), text cells neutralized.

    Numbers are written as they are: only text can carry a formula.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(header))
    for count, row in enumerate(rows, 1):
        writer.writerow([safe_cell(cell) if isinstance(cell, str) or cell is None else cell for cell in row])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
