"""The slice filters every account page reads from its URL: parsing, and the same rows from rollups and generations."""
import pytest
from django.db import connection
from django.db.models import Sum
from django.http import QueryDict

from analytics.models import AccountDay, AccountTagDay, AccountUserDay, Generation
from analytics.usage import sources
from analytics.usage.filters import FILTER_COLUMNS, Filters, filters_parse
from core.params import ParamError
from core.timerange import days_span
from marketplace.models import Model

from ..conftest import D1, at, record, run_batch, write_jsonl


def test_one_value_is_eq_several_are_in_and_the_url_reads_back():
    filters = filters_parse(QueryDict("tag=prod&model=4&model=3&model=4&user=u-1&api_key=0&ignored=1"))
    assert filters.items == (("model", (4, 3)), ("api_key", (0,)), ("user", ("u-1",)), ("tag", ("prod",)))
    assert filters_parse(QueryDict("&".join(f"{k}={v}" for k, v in filters.query()))) == filters
    assert filters.narrowed("model", 9).get("model") == (9,)
    assert filters.narrowed("app", 0).items[-1] == ("tag", ("prod",))  # dimensions stay in their order
    assert not filters_parse(QueryDict(""))
    assert filters_parse({"user": [""]}).get("user") == ("",)  # "no user"


@pytest.mark.parametrize(("query", "message"), [
    ("model=x", "model must be a whole number"),
    ("provider=0", "provider: not an id ('0')."),
    ("model=-3", "model: not an id ('-3')."),
    ("tag=a,b", "tag: not a tag this account can have ('a,b')."),
    ("tag=" + "t" * 65, "tag: not a tag this account can have"),
    ("user=" + "u" * 129, "user: not a user this account can have"),
    ("&".join(f"app={i}" for i in range(51)), "app: at most 50 values."),
])
def test_unusable_values_are_refused_by_name(query, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        filters_parse(QueryDict(query))


@pytest.mark.django_db
def test_rollups_and_generations_answer_the_same_slice(tmp_path):
    rows = [
        record(id="g1", created_at=at(D1, 9), user="u-1", tags=["prod", "chat"], total_cost=0.001),
        record(id="g2", created_at=at(D1, 9), user="u-2", tags=["prod_x"], total_cost=0.002),  # not "prod"
        record(id="g3", created_at=at(D1, 9), user="u-1", tags=["Prod"], total_cost=0.004),  # not "prod" either
        record(id="g4", created_at=at(D1, 9), user="u-1", model="lab/other", api_key=..., total_cost=0.008),
        record(id="g5", created_at=at(D1, 9), account="acct_b", user="u-1", tags=["prod"], total_cost=0.016),
    ]
    run_batch(write_jsonl(tmp_path / "t.jsonl", rows))
    account_id = Generation.objects.get(pk="g1").account_id
    other = Model.objects.get(slug="lab/other").pk

    def spend(filters: Filters) -> tuple[int, int, int]:
        """Through the rollup's ORM condition (or the generations', when no rollup holds the slice), the
        SQL condition on the rows the usage queries read (sources.account_rows), and the generation table's."""
        columns = [FILTER_COLUMNS[d] for d, _ in filters.items]
        rollup = sources.rollup_for(columns, hourly=False)
        by_q = (rollup.objects.filter(filters.rollup_q(), account_id=account_id) if rollup
                else Generation.objects.filter(filters.generation_q(), account_id=account_id, is_byok=False))
        by_q = by_q.aggregate(s=Sum("spend_units" if rollup else "cost_units"))
        rows = sources.account_rows(account_id, *days_span(D1, D1), hourly=False, columns=columns)
        where, params = filters.rollup_sql()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {rows.sums_of(['spend_units'])} {rows.sql}{where}", [*rows.params, *params])
            by_sql = cursor.fetchone()[0]
        by_generations = Generation.objects.filter(filters.generation_q(), account_id=account_id).aggregate(
            s=Sum("cost_units"))
        return int(by_q["s"] or 0), int(by_sql or 0), int(by_generations["s"] or 0)

    unit = 10_000_000  # $0.001
    assert spend(filters_parse(QueryDict("tag=prod"))) == (unit,) * 3  # AccountTagDay
    assert spend(filters_parse(QueryDict("tag=prod&tag=prod_x"))) == (3 * unit,) * 3
    assert spend(filters_parse(QueryDict("user=u-1"))) == (13 * unit,) * 3  # AccountUserDay
    assert spend(filters_parse(QueryDict("user=u-1&tag=Prod"))) == (4 * unit,) * 3  # the generations
    assert spend(filters_parse(QueryDict(f"api_key=0&model={other}"))) == (8 * unit,) * 3  # AccountDay
    assert spend(filters_parse(QueryDict(f"user=u-1&model={other}"))) == (8 * unit,) * 3  # the generations
    assert spend(filters_parse(QueryDict("user=nobody"))) == (0, 0, 0)
    assert [sources.rollup_for(c, hourly=False) for c in (["tags"], ["end_user"], ["end_user", "tags"], ["model_id"])] \
        == [AccountTagDay, AccountUserDay, None, AccountDay]
    assert sources.rollup_for(["end_user"], hourly=True) is None
