"""`spend_by_utc_day`, the budgets' history: per UTC day, of the account or of one key, user or tag; requests
without a user have no user rollup row (analytics.rollups) and are the account's less its users'."""
from datetime import timedelta

import pytest

from analytics.models import AccountUserDay
from analytics.usage.spend import spend_by_utc_day
from billing.models import Account
from core.money import UNITS_PER_USD

from ..conftest import D1, D2, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


def test_spend_by_day_of_a_user_and_of_requests_without_one(tmp_path):
    rows = [record(id="g1", created_at=at(D2, 9), total_cost=0.25, user="u1"),
            record(id="g2", created_at=at(D2, 10), total_cost=0.5),
            record(id="g3", created_at=at(D1, 9), total_cost=0.125, user="u1"),
            record(id="g4", created_at=at(D1, 11), total_cost=2, user="u2"),
            record(id="g5", created_at=at(D1, 12), total_cost=1),
            record(id="g6", created_at=at(D1, 13), total_cost=4, is_byok=True)]  # BYOK: no spend
    run_batch(write_jsonl(tmp_path / "t.jsonl", rows))
    account = Account.objects.get(external_id="acct_a").pk
    since, before = D2 - timedelta(days=3), D1 + timedelta(days=1)
    assert not AccountUserDay.objects.filter(end_user="").exists()
    assert spend_by_utc_day(account_id=account, since=since, before=before, end_user="u1") == {
        D2: UNITS_PER_USD // 4, D1: UNITS_PER_USD // 8}
    assert spend_by_utc_day(account_id=account, since=since, before=before, end_user="") == {
        D2: UNITS_PER_USD // 2, D1: UNITS_PER_USD}
    assert spend_by_utc_day(account_id=account, since=D1, before=before, end_user="") == {D1: UNITS_PER_USD}
