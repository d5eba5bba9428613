"""An alert event is recorded once per crossing and reaches the owners once, also when the same
crossing is emitted many times at once."""
import pytest
from django.core import mail

from billing.alert_events import Alert, alert_emit, alerts_emit
from billing.models import AlertEvent

from .conftest import make_user, run_threads


def test_an_event_is_recorded_and_emailed_to_the_owners_once(acct_a, django_capture_on_commit_callbacks):
    make_user("olga", acct_a, "owner")
    make_user("vic", acct_a, "viewer")
    with django_capture_on_commit_callbacks(execute=True):
        first = alert_emit(account=acct_a, event="balance.low", dedupe_key="balance.low:1",
                           subject="Low credit balance on Alpha Labs", text="The balance is $3.00.",
                           data={"balance_usd": "3.00"})
        again = alert_emit(account=acct_a, event="balance.low", dedupe_key="balance.low:1",
                           subject="Low credit balance on Alpha Labs", text="The balance is $2.00.")
    assert first is not None
    assert again is None
    assert [(m.subject, m.to) for m in mail.outbox] == [("Low credit balance on Alpha Labs", ["olga@example.com"])]
    event = AlertEvent.objects.get()
    assert (event.event, event.text, event.data) == ("balance.low", "The balance is $3.00.", {"balance_usd": "3.00"})


def test_one_statement_records_many_accounts_and_skips_the_known_keys(acct_a, acct_b, django_assert_num_queries):
    alert_emit(account=acct_b, event="spend.unusual", dedupe_key="unusual:2026-12-02T11", subject="s", text="t")
    alerts = [Alert(account_id=acct_a.pk, event="spend.unusual", dedupe_key="unusual:2026-12-02T11", subject="s", text="t"),
              Alert(account_id=acct_b.pk, event="spend.unusual", dedupe_key="unusual:2026-12-02T11", subject="s", text="t")]
    # The INSERT, the read of the new rows, the accounts' channels (none: e-mail to the owners), the
    # owners' addresses.
    with django_assert_num_queries(4):
        events = alerts_emit(alerts=alerts)
    assert [e.account_id for e in events] == [acct_a.pk]


def test_an_unknown_event_is_refused(acct_a):
    with pytest.raises(ValueError, match="unknown alert event 'balance.lo'"):
        Alert(account_id=acct_a.pk, event="balance.lo", dedupe_key="k", subject="s", text="t")


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_emits_of_one_crossing_record_one_event(acct_a):
    results = run_threads(20, lambda i: alert_emit(account=acct_a.pk, event="budget.threshold",
                                                    dedupe_key="budget:1:80:2026-12-01:0", subject="s", text=f"{i}"))
    assert sum(result is not None for result in results) == 1
    assert not [r for r in results if isinstance(r, Exception)]
    assert AlertEvent.objects.filter(account=acct_a).count() == 1
