"""A generation's end user, session and tags go from the log into the generation and the account rollups."""
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db.models import Sum

from analytics.models import AccountDay, AccountHour, AccountTagDay, AccountUserDay, Generation, Reject
from analytics.usage.grouping import grouped_sums
from billing.models import Account

from ..conftest import D1, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


def test_users_sessions_and_tags_reach_the_generations_and_the_account_rollups(tmp_path):
    rows = [
        record(id="g1", created_at=at(D1, 9), user="u-1", session_id="s-1", tags=["prod", "chat"], total_cost=0.001),
        record(id="g2", created_at=at(D1, 9, 30), user="u-1", session_id="s-1", tags="chat,prod", total_cost=0.002),
        record(id="g3", created_at=at(D1, 10), user="u-2", tags=["prod"], total_cost=0.004),
        record(id="g4", created_at=at(D1, 10), total_cost=0.008),  # no user, no tags
        record(id="g5", created_at=at(D1, 11), account="acct_b", user="u-1", tags=["prod"], total_cost=0.016),
        record(id="g6", created_at=at(D1, 11), user="u" * 129),  # too long: rejected, counted nowhere
    ]
    batch = run_batch(write_jsonl(tmp_path / "t.jsonl", rows))
    assert (batch.accepted, batch.rejected) == (5, 1)
    assert list(Reject.objects.filter(batch=batch).values_list("line", "reason")) == [(6, "too_long:user")]
    assert {g.id: (g.end_user, g.session_id, g.tags) for g in Generation.objects.all()} == {
        "g1": ("u-1", "s-1", ",chat,prod,"), "g2": ("u-1", "s-1", ",chat,prod,"), "g3": ("u-2", "", ",prod,"),
        "g4": ("", "", ""), "g5": ("u-1", "", ",prod,")}

    def sums(table, key, account):
        return {r[key]: (r["requests"], r["spend"]) for r in
                table.objects.filter(account__external_id=account).values(key)
                .annotate(requests=Sum("requests"), spend=Sum("spend_units")).order_by()}

    # acct_a by user and by tag set, each in its own daily rollup; the anonymous, untagged request has no
    # row there (it would repeat AccountDay's), and the pages read it as "" all the same (usage.sources)
    assert sums(AccountUserDay, "end_user", "acct_a") == {"u-1": (2, 30_000_000), "u-2": (1, 40_000_000)}
    assert sums(AccountTagDay, "tags", "acct_a") == {",chat,prod,": (2, 30_000_000), ",prod,": (1, 40_000_000)}
    account_a = Account.objects.get(external_id="acct_a").pk
    day = datetime.combine(D1, time(), tzinfo=UTC)
    for column, named in (("end_user", {"u-1": (2, 30_000_000), "u-2": (1, 40_000_000)}),
                          ("tags", {",chat,prod,": (2, 30_000_000), ",prod,": (1, 40_000_000)})):
        read = grouped_sums(account_a, day, day + timedelta(days=1), hourly=False, sets=[(column,)])[(column,)]
        assert {k[0]: (t.requests, t.spend_units) for k, t in read.items()} == {**named, "": (1, 80_000_000)}
    # the rollups by model, provider, key and app hold no user and no tags: one row for the four requests
    assert sums(AccountDay, "model_id", "acct_a") == sums(AccountHour, "model_id", "acct_a") == {
        Generation.objects.get(pk="g1").model_id: (4, 150_000_000)}
    assert AccountDay.objects.filter(account__external_id="acct_a").count() == 1
    assert AccountUserDay.objects.filter(account__external_id="acct_a").count() == 2
    # the same user id in another account is another account's user
    assert sums(AccountUserDay, "end_user", "acct_b") == {"u-1": (1, 160_000_000)}
