"""CSV output that spreadsheets cannot execute, streamed row by row."""
import csv
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


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """Yield CSV text line by line (for StreamingHttpResponse), every cell neutralized."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])
