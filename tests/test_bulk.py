"""core.bulk: registering rows in bulk gives them every default an ORM-made row has, and skips existing keys."""
import pytest
from django.forms.models import model_to_dict

from billing.accounts import accounts_register, api_keys_register
from billing.models import Account, ApiKey
from core.bulk import insert_ignoring_conflicts

pytestmark = pytest.mark.django_db


def test_inserted_rows_hold_the_defaults_of_a_row_the_orm_makes_and_conflicts_are_skipped():
    made = Account.objects.create(external_id="by-orm")
    insert_ignoring_conflicts(Account, ("external_id",), [("bulk-a",), ("by-orm",), ("bulk-b",)])
    assert Account.objects.count() == 3  # "by-orm" was there: skipped, not doubled, no error
    expected = {k: v for k, v in model_to_dict(made).items() if k not in ("id", "external_id")}
    for account in Account.objects.filter(external_id__startswith="bulk-"):
        assert {k: v for k, v in model_to_dict(account).items() if k not in ("id", "external_id")} == expected
        assert account.created is not None
        assert abs((account.created - made.created).total_seconds()) < 60


def test_registering_accounts_and_keys_twice_returns_the_same_ids():
    ids = accounts_register(external_ids=["a1", "a2", "a3"])
    assert accounts_register(external_ids=["a3", "a2", "a1", "a4"]) == {**ids, "a4": Account.objects.get(
        external_id="a4").pk}
    keys = api_keys_register(keys=[(ids["a1"], "k1"), (ids["a2"], "k1"), (ids["a1"], "k2")])
    assert len(set(keys.values())) == 3
    assert api_keys_register(keys=list(keys)) == keys
    key = ApiKey.objects.get(pk=keys[(ids["a1"], "k2")])
    assert (key.account_id, key.external_id, key.name) == (ids["a1"], "k2", "")


def test_a_field_whose_default_is_made_per_row_is_refused_rather_than_shared(monkeypatch):
    """A callable default (a uuid, a token) is made per row by the ORM; one prototype's value for all rows
    would be wrong, so the bulk insert refuses until the caller gives that column."""
    field = Account._meta.get_field("name")
    monkeypatch.setattr(field, "default", lambda: "made per row")
    with pytest.raises(TypeError, match="Account: name take a default per row; give them in `columns`"):
        insert_ignoring_conflicts(Account, ("external_id",), [("x",)])
    insert_ignoring_conflicts(Account, ("external_id", "name"), [("x", "given")])
    assert Account.objects.get(external_id="x").name == "given"
