"""Routed-traffic log formats (docs/formats.md): detection, parsing and validation.

One module per format (`openrouter`, `litellm`, `generic_csv`), the canonical record and its field
checks (`fields`), and the reader of lines of any of them (`parse`). Pure Python, no database.
"""
from .fields import FORMATS, FormatError, Record, Rejected
from .parse import detect_format, parse_lines, read_header

__all__ = ["FORMATS", "FormatError", "Record", "Rejected", "detect_format", "parse_lines", "read_header"]
