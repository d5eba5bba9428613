"""CSV output that spreadsheets cannot execute, streamed row by row."""
import csv
import io
from collections.abc import Iterable, Iterator

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Neutralize a cell a spreadsheet would read as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(DANGEROUS_PREFIXES) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
