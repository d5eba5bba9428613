"""The busiest pages' query counts, pinned: the rankings, an account's overview and explorer, credits.

Each page is read once on traffic of one model, provider, key, app, end user and tag (and one
purchase and usage debit), once on traffic of five of each, with the cache empty both times, and
must run exactly the same number of queries: a query per row a page lists (an N+1) makes the second
count larger and fails the pin. A change that adds or removes a query for the page as a whole moves
both counts together: update the pin, and say why in the commit.
"""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.ledger import ledger_debit_usage
from billing.models import Account, Membership
from billing.purchases import credits_purchase_start
from core.money import usd_to_units
from marketplace.models import App, Model
from tests.analytics.conftest import _fresh_prices, _no_task_queueing, record, run_batch, write_jsonl  # noqa: F401  (autouse: ingest in-process)
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db

SIZES = (1, 5)


def _traffic(directory, n: int):
    """Account acct_a: per i < n a model of its own lab at its own provider, key, app, end user and tag,
    each with requests in the last day and the day before (so every change has a previous window);
    the models listed and the apps public, so the rankings show every one. Returns alice, its owner."""
    now = timezone.now()
    rows = [record(id=f"g{i}-{hours}", created_at=(now - timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
                   model=f"lab{i}/model-{i}", provider_name=f"Provider {i}", api_key=f"key-{i}",
                   origin=f"https://app{i}.example/", app_name=f"App {i}", user=f"user-{i}", tags=[f"tag-{i}"],
                   account="acct_a", tokens_prompt=100 * (i + 1), total_cost=0.001 * (i + 1))
            for i in range(n) for hours in (2, 30)]
    batch = run_batch(write_jsonl(directory / "traffic.jsonl", rows))
    assert (batch.accepted, batch.rejected) == (2 * n, 0)
    Model.objects.update(listed=True)
    App.objects.update(public=True)
    assert Model.objects.count() == App.objects.count() == n
    return member_of(Account.objects.get(external_id="acct_a"), Membership.Role.OWNER, "alice")


def _count(django_assert_num_queries, pin: int, read):
    with django_assert_num_queries(pin):
        response = read()
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("n", SIZES)
def test_the_rankings_page_runs_the_same_queries_for_one_model_or_five(client, tmp_path, n,
                                                                       django_assert_num_queries):
    _traffic(tmp_path, n)
    response = _count(django_assert_num_queries, 29, lambda: client.get("/rankings/", {"window": "week"}))
    assert all(f"model-{i}" in response.content.decode() for i in range(n))
    _count(django_assert_num_queries, 0, lambda: client.get("/rankings/", {"window": "week"}))  # cached


@pytest.mark.parametrize("n", SIZES)
def test_the_overview_runs_the_same_queries_for_one_model_key_and_app_or_five(client, tmp_path, n,
                                                                               django_assert_num_queries):
    client.force_login(_traffic(tmp_path, n))
    response = _count(django_assert_num_queries, 19, lambda: client.get("/account/"))
    assert all(f"key-{i}" in response.content.decode() for i in range(n))


@pytest.mark.parametrize("n", SIZES)
def test_the_explorer_runs_the_same_queries_for_one_model_and_key_or_five(client, tmp_path, n,
                                                                          django_assert_num_queries):
    client.force_login(_traffic(tmp_path, n))
    response = _count(django_assert_num_queries, 11,
                      lambda: client.get("/account/activity/", {"group_by": ["model", "api_key"], "granularity": "day"}))
    assert all(f"model-{i}" in response.content.decode() for i in range(n))


@pytest.mark.parametrize("n", SIZES)
def test_the_credits_page_runs_the_same_queries_for_one_purchase_and_debit_or_five(client, tmp_path, n, settings,
                                                                                  django_assert_num_queries):
    settings.BILLING_GATEWAY = "demo"
    alice = _traffic(tmp_path, n)
    account = alice.memberships.get().account
    for i in range(n):
        credits_purchase_start(account=account, amount=Decimal(5 + i))
        ledger_debit_usage(spend_by_account={account.pk: usd_to_units("0.01")}, idempotency_prefix=f"page-{i}")
    client.force_login(alice)
    response = _count(django_assert_num_queries, 14, lambda: client.get("/account/credits/"))
    assert len(response.context["payments"]) == n
