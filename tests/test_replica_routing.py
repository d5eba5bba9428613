"""Which database a read goes to (core.replica), without a standby: tests/replica runs them on one."""
import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from analytics.models import AccountDay, Generation
from billing.models import Account, LedgerEntry
from core import replica
from marketplace.models import Model
from tests.test_settings import _load_settings

PRINT_DATABASES = ("import django; django.setup(); from django.conf import settings as s; "
                   "r = s.DATABASES.get('replica'); "
                   "print(sorted(s.DATABASES), getattr(s, 'DATABASE_ROUTERS', []), "
                   "r and (r['NAME'], r['PORT'], r['OPTIONS']['connect_timeout'], r['TEST']['MIRROR']))")


def test_without_a_replica_url_there_is_one_database_and_no_router():
    result = _load_settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/h8"}, code=PRINT_DATABASES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['default'] [] None"


def test_a_replica_url_adds_the_alias_and_its_router():
    result = _load_settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/h8",
                             "DATABASE_REPLICA_URL": "postgres://postgres@127.0.0.1:5433/h8"}, code=PRINT_DATABASES)
    assert result.returncode == 0, result.stderr
    # Outside the tests the alias is a server of its own (no test mirror); a dead one is given up in 2 s.
    assert result.stdout.strip() == "['default', 'replica'] ['core.replica.ReplicaRouter'] ('h8', 5433, 2, None)"


@pytest.fixture
def replica_up(monkeypatch):
    """As if a replica were configured and answering."""
    monkeypatch.setattr(replica, "_replica_usable", lambda: True)


def test_outside_a_scope_every_read_goes_to_the_primary(replica_up):
    router = replica.ReplicaRouter()
    assert {router.db_for_read(m) for m in (Generation, AccountDay, Model, Account)} == {"default"}
    assert replica.read_alias() == "default"


def test_in_a_scope_analytics_and_the_catalog_read_the_replica_billing_and_writes_the_primary(replica_up):
    router = replica.ReplicaRouter()
    with replica.replica_reads():
        assert router.db_for_read(Generation) == router.db_for_read(AccountDay) == "replica"
        assert router.db_for_read(Model) == "replica"
        assert router.db_for_read(Account) == router.db_for_read(LedgerEntry) == "default"
        assert router.db_for_write(AccountDay) == "default"
        assert replica.read_alias() == "replica"
        with replica.primary_reads():
            assert router.db_for_read(AccountDay) == "default"
        assert replica.read_alias() == "replica"
    assert replica.read_alias() == "default"
    assert router.allow_migrate("replica", "analytics") is False
    assert router.allow_migrate("default", "analytics") is True


@pytest.mark.parametrize(("method", "cookie", "alias"), [
    ("get", False, "replica"), ("head", False, "replica"), ("post", False, "default"),
    ("get", True, "default"),  # within the pin after a write
])
def test_a_request_that_wrote_reads_the_primary(method, cookie, alias, monkeypatch):
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    # Up unless the request is pinned to the primary (the real check also connects).
    monkeypatch.setattr(replica, "_replica_usable", lambda: not replica._pinned.get())
    seen = []

    def view(request):
        seen.append(replica.read_alias())
        return HttpResponse("ok")

    request = getattr(RequestFactory(), method)("/rankings/")
    if cookie:
        request.COOKIES[replica.PIN_COOKIE] = "1"
    response = replica.ReplicaPinMiddleware(replica.replica_view(view))(request)
    assert seen == [alias]
    assert (replica.PIN_COOKIE in response.cookies) is (method == "post")


def test_a_query_cancelled_by_the_standby_is_answered_from_the_primary(monkeypatch, caplog):
    """A hot standby cancels a query whose rows replay removes (SQLSTATE 40001): that request reads the
    primary, and the replica stays in use for the next."""
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "_replica_usable", lambda: True)
    monkeypatch.setattr(replica, "_down_until", 0.0)
    conflict = type("QueryCanceled", (Exception,), {"sqlstate": "40001"})
    seen = []

    def view(request):
        seen.append(replica.read_alias())
        if replica.read_alias() == "replica":
            raise OperationalError("canceling statement due to conflict with recovery") from conflict()
        return HttpResponse("ok")

    response = replica.replica_view(view)(RequestFactory().get("/rankings/"))
    assert response.content == b"ok"
    assert seen == ["replica", "default"]
    assert caplog.messages == ["read replica cancelled a query of /rankings/ (conflict with recovery): reading the primary"]
    assert replica._down_until == 0.0  # no circuit breaker for a conflict


@pytest.mark.django_db
def test_without_a_replica_a_write_sets_no_cookie(client):
    response = client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    assert replica.PIN_COOKIE not in response.cookies
