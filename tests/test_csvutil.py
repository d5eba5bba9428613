"""CSV neutralization: the Python rule and the SQL rule of the generations export agree cell by cell."""
import pytest
from django.db import connection

from analytics.usage.log_export import pg_safe
from core.csvutil import safe_cell

CELLS = {
    "=1+1": "'=1+1", "+cmd": "'+cmd", "-inf": "'-inf", "-nan": "'-nan", "-1_0": "'-1_0", "-1 ": "'-1 ",
    "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "-": "'-", "+": "'+",
    "-1": "-1", "+2.5": "+2.5", "-.5": "-.5", "-1.5e3": "-1.5e3", "+7E-2": "+7E-2", "1": "1",
    "plain": "plain", "": "", "inf": "inf",
}


@pytest.mark.parametrize(("cell", "expected"), CELLS.items())
def test_safe_cell_quotes_formula_like_text_and_leaves_numbers(cell, expected):
    assert safe_cell(cell) == expected


@pytest.mark.django_db
def test_the_sql_rule_of_the_export_neutralizes_exactly_the_same_cells():
    with connection.cursor() as cursor:
        for cell, expected in CELLS.items():
            cursor.execute(f"SELECT {pg_safe('v')} FROM (SELECT %s::text AS v) AS t", [cell])
            assert (cell, cursor.fetchone()[0]) == (cell, expected)
