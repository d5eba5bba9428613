"""Cutting a file into chunks of whole lines: the same ranges as reading it line by line."""
import io

from hypothesis import given
from hypothesis import strategies as st

from analytics.ingest.batches import chunk_ranges


def _line_by_line(data: bytes, size: int) -> tuple[list[tuple[int, int, int]], int]:
    chunks, position, in_chunk, chunk_start, chunk_first, total = [], 0, 0, 0, 1, 0
    for line in io.BytesIO(data):
        position += len(line)
        in_chunk += 1
        total += 1
        if in_chunk >= size:
            chunks.append((chunk_first, chunk_start, position))
            chunk_start, chunk_first, in_chunk = position, total + 1, 0
    if in_chunk:
        chunks.append((chunk_first, chunk_start, position))
    return chunks, total


@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=40),
       trailing_newline=st.booleans(), size=st.integers(1, 6), block_size=st.integers(1, 17))
def test_chunk_ranges_match_line_by_line_reading(lines, trailing_newline, size, block_size):
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    assert chunk_ranges(io.BytesIO(data), 0, 1, size, block_size) == _line_by_line(data, size)
