"""Budgets and reservations: the gateway's check, its holds, and what ingestion adds to them.

Use of a budget in a period = the ingested spend of its period (`BudgetSpend`, BYOK excluded) + the
open reservations that apply to it and were made in the period. Periods come from the clock
(`billing.periods`): nothing resets them.

**Holds are arithmetic.** A reservation holds while it is open and `expires_at` is ahead: every
check sums the open, unexpired reservations of the account that the budget covers, so an expired
hold stops counting the moment it expires, with no job. A settled one (its generation was
ingested) counts through `BudgetSpend` instead, and a released one not at all.

**One snapshot, one writer per account.** A check reads the balance, every applicable budget's
spend and every hold in ONE statement, so a chunk that commits meanwhile (adding a generation's
spend and settling its hold) is seen whole or not at all. A reservation takes the account's
reservation lock (`lock_objects.reservation_lock`, not the account row, which a chunk holds for
its whole transaction) before that statement, so reservations of one account are decided one at
a time and all or nothing: 500 parallel $0.01 reservations against $1.00 admit exactly 100.

**Ingestion on sets.** A chunk's spend reaches the budgets and settles reservations in a constant
number of statements (`budgets_chunk_apply`), whatever its accounts, keys, users and tags: one to
find the budgets of the chunk's spending accounts (a chunk without any stops there), one to read
their rows, one upsert of every (budget, subject, period); one to find accounts with open
reservations (none: stop), one update that settles them.

(Longer than 400 lines: the check, the reservation and ingestion's apply share one snapshot
statement, its lock order and the answers built from it; apart, they would have to agree by
convention. The budgets' CRUD beside them validates what that statement reads.)
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from analytics.usage.spend import spend_of_generations
from core.bulk import ids_match_sql
from core.money import MAX_AMOUNT_USD, units_text, usd_to_units
from core.timerange import zone_named

from .lock_objects import reservation_lock
from .models import Account, ApiKey, Budget, BudgetAlertLevel, BudgetSpend, Reservation
from .periods import PERIODS, period_key, period_now


class ReservationConflict(Exception):
    """The id was reserved already, for another request (key, user, tags or amount)."""


class AmbiguousKey(Exception):
    """A key id several accounts use, sent without the account."""


# Reading -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BudgetUse:
    """One budget in its current period: spend, holds, and what remains."""

    budget: Budget
    subject: str  # the end user of an each_user budget; "" otherwise
    period_key: date
    period_start: datetime | None
    resets_at: datetime | None
    spent_units: int
    reserved_units: int

    @property
    def used_units(self) -> int:
        return self.spent_units + self.reserved_units

    @property
    def left_units(self) -> int:
        """What remains, below zero when the use went over (never clamped)."""
        return self.budget.amount_units - self.used_units

    @property
    def remaining_units(self) -> int:
        return max(0, self.left_units)

    @property
    def over_units(self) -> int:
        return max(0, -self.left_units)

    @property
    def hard(self) -> bool:
        return self.budget.mode == Budget.Mode.HARD


@dataclass(frozen=True)
class SpendView:
    """What the gateway is told about a request: the balance, every budget that applies, the binding one."""

    key: ApiKey
    balance_units: int
    reserved_units: int  # every open hold of the account, against the balance
    uses: list[BudgetUse]

    @property
    def balance_left_units(self) -> int:
        return self.balance_units - self.reserved_units

    @property
    def binding(self) -> BudgetUse | None:
        """The hard budget with the least left, when it is below the balance's (None: the balance binds)."""
        hard = [u for u in self.uses if u.hard]
        if not hard:
            return None
        least = min(hard, key=lambda u: (u.left_units, u.budget.pk))
        return least if least.left_units < self.balance_left_units else None

    @property
    def left_units(self) -> int:
        binding = self.binding
        return self.balance_left_units if binding is None else binding.left_units

    @property
    def remaining_units(self) -> int:
        return max(0, self.left_units)

    @property
    def allowed(self) -> bool:
        return self.left_units > 0

    def fits(self, amount_units: int) -> bool:
        return amount_units <= self.left_units


def tags_text(tags: Iterable[str]) -> str:
    """Tags as ingestion keeps them: ",a,b," sorted, each once; "" for none."""
    found = sorted({t.strip() for t in tags if t.strip()})
    return f",{','.join(found)}," if found else ""


def _applies(budget: Budget, *, key_id: int, user: str, tags: str) -> bool:
    scope = budget.scope
    if scope == Budget.Scope.ACCOUNT:
        return True
    if scope == Budget.Scope.KEY:
        return budget.api_key_id == key_id
    if scope == Budget.Scope.USER:
        return bool(user) and budget.target == user
    if scope == Budget.Scope.EACH_USER:
        return bool(user)
    return bool(tags) and f",{budget.target}," in tags


def _like_tag(tag: str) -> str:
    escaped = tag.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%,{escaped},%"


def _hold_filter(budget: Budget, *, subject: str, start: datetime | None, end: datetime | None,
                 key_id: int) -> tuple[str, list]:
    """The open reservations (alias r) that count against `budget` in the period [start, end)."""
    ops = connection.ops
    parts, params = [], []
    if start is not None:
        parts.append("r.created >= %s AND r.created < %s")
        params += [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
    scope = budget.scope
    if scope == Budget.Scope.KEY:
        parts.append("r.api_key_id = %s")
        params.append(key_id)
    elif scope in (Budget.Scope.USER, Budget.Scope.EACH_USER):
        parts.append("r.end_user = %s")
        params.append(subject if scope == Budget.Scope.EACH_USER else budget.target)
    elif scope == Budget.Scope.TAG:
        parts.append("r.tags LIKE %s ESCAPE '!'")
        params.append(_like_tag(budget.target))
    return (" AND ".join(parts) or "TRUE"), params


def spend_view(*, key: ApiKey, account: Account, user: str = "", tags: str = "",
               now: datetime | None = None, budgets: list[Budget] | None = None) -> SpendView:
    """Read the balance, holds and every budget that applies to a request of `key`, in one snapshot."""
    now = now or timezone.now()
    if budgets is None:
        budgets = list(Budget.objects.filter(account_id=account.pk).order_by("pk"))
    applicable = [b for b in budgets if _applies(b, key_id=key.pk, user=user, tags=tags)]
    zone = account.zone
    ops = connection.ops
    periods = []
    hold_sums, spent_subqueries = [], []
    hold_params, spent_params = [], []
    for budget in applicable:
        subject = user if budget.scope == Budget.Scope.EACH_USER else ""
        period = period_now(period=budget.period, now=now, zone=zone, week_start=account.week_start)
        periods.append((budget, subject, period))
        where, params = _hold_filter(budget, subject=subject, start=period[1], end=period[2], key_id=key.pk)
        hold_sums.append(f"COALESCE(SUM(r.amount_units) FILTER (WHERE {where}), 0)")
        hold_params += params
        spent_subqueries.append("COALESCE((SELECT s.spent_units FROM billing_budgetspend s WHERE s.budget_id = %s"
                                " AND s.subject = %s AND s.period_key = %s), 0)")
        spent_params += [budget.pk, subject, ops.adapt_datefield_value(period[0])]
    holds = ", ".join(["COALESCE(SUM(r.amount_units), 0)", *hold_sums])
    sql = (f"WITH h AS (SELECT {holds} FROM billing_reservation r WHERE r.account_id = %s AND r.status = 'open'"
           f" AND r.expires_at > %s)"
           f" SELECT a.balance_units{''.join(', ' + q for q in spent_subqueries)}, h.*"
           f" FROM billing_account a, h WHERE a.id = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*hold_params, account.pk, ops.adapt_datetimefield_value(now), *spent_params,
                             account.pk])
        row = cursor.fetchone()
    n = len(periods)
    balance, spent, total_held, held = row[0], row[1:1 + n], row[1 + n], row[2 + n:]
    uses = [BudgetUse(budget=b, subject=subject, period_key=p[0], period_start=p[1], resets_at=p[2],
                      spent_units=int(spent[i]), reserved_units=int(held[i]))
            for i, (b, subject, p) in enumerate(periods)]
    return SpendView(key=key, balance_units=int(balance), reserved_units=int(total_held), uses=uses)


def gateway_key(*, api_key: str, account: str | None = None, account_id: int | None = None) -> ApiKey:
    """The key of the gateway's ids (ApiKey.DoesNotExist when unknown; AmbiguousKey when several
    accounts use the id and none was named). `account_id` confines it to one account (an account token)."""
    keys = ApiKey.objects.select_related("account").filter(external_id=api_key)
    if account:
        keys = keys.filter(account__external_id=account)
    if account_id is not None:
        keys = keys.filter(account_id=account_id)
    found = list(keys[:2])
    if not found:
        raise ApiKey.DoesNotExist
    if len(found) > 1:
        raise AmbiguousKey("several accounts use this key id: send `account`")
    return found[0]


# Answers -------------------------------------------------------------------------------------------

def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def use_answer(use: BudgetUse) -> dict:
    b = use.budget
    return {"id": b.pk, "scope": b.scope, "target": b.target, "subject": use.subject, "mode": b.mode,
            "period": b.period, "amount_usd": units_text(b.amount_units), "spent_usd": units_text(use.spent_units),
            "reserved_usd": units_text(use.reserved_units), "used_usd": units_text(use.used_units),
            "remaining_usd": units_text(use.remaining_units), "over_usd": units_text(use.over_units),
            "period_start": _when(use.period_start), "resets_at": _when(use.resets_at)}


def binding_answer(view: SpendView) -> dict:
    use = view.binding
    if use is None:
        return {"scope": "balance", "id": None, "target": "", "period": None, "resets_at": None,
                "remaining_usd": units_text(max(0, view.balance_left_units))}
    return {"scope": use.budget.scope, "id": use.budget.pk, "target": use.budget.target or use.subject,
            "period": use.budget.period, "resets_at": _when(use.resets_at),
            "remaining_usd": units_text(use.remaining_units)}


def check_answer(view: SpendView) -> dict:
    return {"allowed": view.allowed, "remaining_usd": units_text(view.remaining_units),
            "binding": binding_answer(view), "account": view.key.account.external_id,
            "api_key": view.key.external_id, "balance_usd": units_text(view.balance_units),
            "balance_reserved_usd": units_text(view.reserved_units),
            "budgets": [use_answer(u) for u in view.uses]}


# Writing -------------------------------------------------------------------------------------------

def spend_reserve(*, reservation_id: str, key: ApiKey, user: str = "", tags: str = "", amount_units: int,
                  now: datetime | None = None) -> tuple[int, dict]:
    """Hold `amount_units` against the balance and every hard budget of the request, all or nothing.

    Answers (201, …) with `expires_at` when it fits, (402, …) with the binding limit when it does
    not; the same id again answers the same (ReservationConflict when it named another request).
    """
    if not isinstance(amount_units, int) or amount_units <= 0:
        raise ValueError("a reservation holds a positive number of units")
    found = _reservation_replay(reservation_id=reservation_id, key=key, user=user, tags=tags,
                                amount_units=amount_units)
    if found is not None:
        return found
    account = key.account
    try:
        with transaction.atomic():
            reservation_lock(account_id=account.pk)  # reservations of an account are decided one by one
            found = _reservation_replay(reservation_id=reservation_id, key=key, user=user, tags=tags,
                                        amount_units=amount_units)
            if found is not None:
                return found
            now = now or timezone.now()
            view = spend_view(key=key, account=account, user=user, tags=tags, now=now)
            expires = now + timedelta(seconds=settings.SPEND_RESERVATION_SECONDS)
            if view.fits(amount_units):
                code = 201
                answer = {"id": reservation_id, "amount_usd": units_text(amount_units), "expires_at": _when(expires),
                          "remaining_usd": units_text(max(0, view.left_units - amount_units)),
                          "binding": binding_answer(view)}
            else:
                code = 402
                answer = {"detail": "the amount does not fit the binding limit", "id": reservation_id,
                          "amount_usd": units_text(amount_units), "remaining_usd": units_text(view.remaining_units),
                          "binding": binding_answer(view)}
            Reservation.objects.create(
                id=reservation_id, account=account, api_key=key, end_user=user, tags=tags, amount_units=amount_units,
                status=Reservation.Status.OPEN if code == 201 else Reservation.Status.REFUSED, created=now,
                expires_at=expires, ended_at=None if code == 201 else now, answer_status=code, answer=answer)
            return code, answer
    except IntegrityError:  # the id was reserved meanwhile under another account's lock
        found = _reservation_replay(reservation_id=reservation_id, key=key, user=user, tags=tags,
                                    amount_units=amount_units)
        if found is None:
            raise
        return found


def _reservation_replay(*, reservation_id: str, key: ApiKey, user: str, tags: str,
                        amount_units: int) -> tuple[int, dict] | None:
    """The first answer to this id, if it was reserved; ReservationConflict when for another request."""
    existing = (Reservation.objects.filter(pk=reservation_id)
                .values_list("api_key_id", "end_user", "tags", "amount_units", "answer_status", "answer").first())
    if existing is None:
        return None
    key_id, end_user, held_tags, units, code, answer = existing
    if (key_id, end_user, held_tags, units) != (key.pk, user, tags, amount_units):
        raise ReservationConflict(f"the id {reservation_id!r} was reserved for another request")
    return code, answer


def reservation_release(*, reservation_id: str, account_id: int | None = None,
                        now: datetime | None = None) -> Reservation:
    """End an open hold now (Reservation.DoesNotExist when unknown, or not `account_id`'s); returns it."""
    rows = Reservation.objects.filter(pk=reservation_id)
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    rows.filter(status=Reservation.Status.OPEN).update(status=Reservation.Status.RELEASED,
                                                       ended_at=now or timezone.now())
    return rows.get()


def reservations_prune(*, now: datetime | None = None) -> int:
    """Delete reservations made more than SPEND_RESERVATION_RETENTION_DAYS ago; returns how many."""
    now = now or timezone.now()
    before = now - timedelta(days=settings.SPEND_RESERVATION_RETENTION_DAYS)
    deleted, _ = Reservation.objects.filter(created__lt=before).delete()
    return deleted


# Ingestion -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _ChunkBudget:
    id: int
    account_id: int
    scope: str
    target: str
    api_key_id: int | None
    period: str
    time_zone: str
    week_start: int


def _rows_source(rows: list[tuple[int, str, date, int]]) -> tuple[str, list]:
    """(budget_id, subject, period_key, units) rows as one source, one or four parameters."""
    return ("(SELECT * FROM unnest(%s::bigint[], %s::text[], %s::date[], %s::bigint[]))"
            " AS d(budget_id, subject, period_key, units)",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]])


def budgets_chunk_apply(*, stage_table: str, spend_sql: str, spending_account_ids: Iterable[int],
                        account_ids: Iterable[int], now: datetime | None = None) -> None:
    """Add a chunk's spend to its budgets and settle its reservations, on sets.

    `stage_table` holds the chunk's inserted generations (id, created_at, account_id, api_key_id,
    end_user, tags and what `spend_sql` reads); `spending_account_ids` are those with spend. Call
    inside the chunk's transaction, last: the budget rows it writes stay locked until the commit.
    """
    spending = sorted(set(spending_account_ids))
    with connection.cursor() as cursor:
        if spending:
            match, params = ids_match_sql("b.account_id", spending)
            cursor.execute("SELECT b.id, b.account_id, b.scope, b.target, b.api_key_id, b.period, a.time_zone,"
                           " a.week_start FROM billing_budget b JOIN billing_account a ON a.id = b.account_id"
                           f" WHERE {match} ORDER BY b.id", params)
            budgets = [_ChunkBudget(*row) for row in cursor.fetchall()]
        else:
            budgets = []
        if budgets:
            by_account: dict[int, list[_ChunkBudget]] = {}
            for budget in budgets:
                by_account.setdefault(budget.account_id, []).append(budget)
            match, params = ids_match_sql("account_id", by_account)
            cursor.execute(f"SELECT account_id, api_key_id, end_user, tags, created_at, {spend_sql} AS spend"
                           f" FROM {stage_table} WHERE {match} AND {spend_sql} <> 0", params)
            zones = {b.account_id: zone_named(b.time_zone) for b in budgets}
            totals: dict[tuple[int, str, date], int] = {}
            for account_id, api_key_id, end_user, tags, created_at, spend in cursor.fetchall():
                for b in by_account[account_id]:
                    if b.scope == Budget.Scope.KEY and b.api_key_id != api_key_id:
                        continue
                    if b.scope == Budget.Scope.USER and (not end_user or b.target != end_user):
                        continue
                    if b.scope == Budget.Scope.EACH_USER and not end_user:
                        continue
                    if b.scope == Budget.Scope.TAG and f",{b.target}," not in (tags or ""):
                        continue
                    subject = end_user if b.scope == Budget.Scope.EACH_USER else ""
                    key = period_key(period=b.period, moment=created_at, zone=zones[account_id],
                                     week_start=b.week_start)
                    totals[(b.id, subject, key)] = totals.get((b.id, subject, key), 0) + int(spend)
            if totals:
                rows = sorted((*k, v) for k, v in totals.items())
                source, params = _rows_source(rows)
                # Ordered by the key: concurrent chunks lock the rows in one order (no deadlock).
                cursor.execute("INSERT INTO billing_budgetspend (budget_id, subject, period_key, spent_units)"
                               f" SELECT budget_id, subject, period_key, units FROM {source}"
                               " WHERE 1 = 1 ORDER BY budget_id, subject, period_key"
                               " ON CONFLICT (budget_id, subject, period_key)"
                               " DO UPDATE SET spent_units = billing_budgetspend.spent_units + EXCLUDED.spent_units",
                               params)
        reservations_settle(cursor=cursor, stage_table=stage_table, spend_sql=spend_sql, account_ids=account_ids,
                            now=now)


def reservations_settle(*, cursor, stage_table: str, spend_sql: str, account_ids: Iterable[int],
                        now: datetime | None = None) -> None:
    """Settle the reservations named by a chunk's generations: their real cost replaces the hold.

    An open (or released) reservation whose generation was ingested ends settled with its cost;
    the spend itself reaches the budgets with the generation's. Two statements, the second only
    when one of the chunk's accounts has an open reservation.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return
    match, params = ids_match_sql("account_id", ids)
    cursor.execute(f"SELECT DISTINCT account_id FROM billing_reservation WHERE status = 'open' AND {match}", params)
    holding = [row[0] for row in cursor.fetchall()]
    if not holding:
        return
    match, params = ids_match_sql("s.account_id", holding)
    when = connection.ops.adapt_datetimefield_value(now or timezone.now())
    cursor.execute(f"UPDATE billing_reservation SET status = 'settled', ended_at = %s, cost_units = s.spend"
                   f" FROM (SELECT id, account_id, {spend_sql} AS spend FROM {stage_table}) AS s"
                   f" WHERE billing_reservation.id = s.id AND billing_reservation.account_id = s.account_id"
                   f" AND billing_reservation.status IN ('open', 'released') AND {match}", [when, *params])


def period_of(*, budget: Budget, account: Account, now: datetime) -> tuple[date, datetime | None, datetime | None]:
    """The current period of a budget: key, start, end."""
    return period_now(period=budget.period, now=now, zone=account.zone, week_start=account.week_start)



# Budgets of the account -----------------------------------------------------------------------------

TAG_MAX_LENGTH = 64
TARGET_MAX_LENGTH = 128
ALERTS_MAX = 10


class BudgetInvalid(ValueError):
    """A budget field that cannot be taken: `field` and the reason."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _checked(*, scope: str, target: str, amount_units: int, period: str, mode: str,
             alert_percentages: list) -> None:
    if scope not in Budget.Scope.values:
        raise BudgetInvalid("scope", f"one of {', '.join(Budget.Scope.values)}")
    if period not in PERIODS:
        raise BudgetInvalid("period", f"one of {', '.join(PERIODS)}")
    if mode not in Budget.Mode.values:
        raise BudgetInvalid("mode", "hard or soft")
    if scope in (Budget.Scope.ACCOUNT, Budget.Scope.EACH_USER):
        if target:
            raise BudgetInvalid("target", f"empty for the scope {scope}")
    elif not target:
        raise BudgetInvalid("target", f"the {'key id' if scope == 'key' else scope} the budget limits")
    if len(target) > TARGET_MAX_LENGTH:
        raise BudgetInvalid("target", f"at most {TARGET_MAX_LENGTH} characters")
    if scope == Budget.Scope.TAG and (len(target) > TAG_MAX_LENGTH or "," in target or target != target.strip()):
        raise BudgetInvalid("target", f"a tag: at most {TAG_MAX_LENGTH} characters, no comma, no outer spaces")
    if not isinstance(amount_units, int) or amount_units < 0 or amount_units > usd_to_units(MAX_AMOUNT_USD):
        raise BudgetInvalid("amount_usd", f"between 0 and {MAX_AMOUNT_USD}")
    if (not isinstance(alert_percentages, list) or len(alert_percentages) > ALERTS_MAX
            or any(type(p) is not int or not 1 <= p <= 1000 for p in alert_percentages)):
        raise BudgetInvalid("alert_percentages", f"at most {ALERTS_MAX} whole percentages from 1 to 1000")


def _spend_backfill(*, budget: Budget, now: datetime) -> None:
    """Count the spend already ingested in the budget's current period (a new or re-scoped budget).

    From the account's generations (their index by account and time), once; ingestion adds the rest.
    A chunk that commits while the budget is created is not counted by either (documented limit).
    """
    account = budget.account
    key, start, _ = period_of(budget=budget, account=account, now=now)
    scope = budget.scope
    totals = spend_of_generations(
        account_id=account.pk, since=start,
        api_key_id=budget.api_key_id if scope == Budget.Scope.KEY else None,
        end_user=budget.target if scope == Budget.Scope.USER else None,
        tag=budget.target if scope == Budget.Scope.TAG else None,
        per_end_user=scope == Budget.Scope.EACH_USER)
    BudgetSpend.objects.filter(budget=budget).delete()
    BudgetSpend.objects.bulk_create([BudgetSpend(budget=budget, subject=subject, period_key=key, spent_units=units)
                                     for subject, units in totals.items()])


def budget_create(*, account: Account, scope: str, target: str = "", amount_units: int, period: str,
                  mode: str = Budget.Mode.HARD, alert_percentages: list | None = None,
                  now: datetime | None = None) -> Budget:
    """Create a budget (BudgetInvalid with the field and reason), counting its period's spend so far."""
    alert_percentages = [] if alert_percentages is None else alert_percentages
    target = target or ""
    _checked(scope=scope, target=target, amount_units=amount_units, period=period, mode=mode,
             alert_percentages=alert_percentages)
    api_key_id = None
    if scope == Budget.Scope.KEY:  # a key the gateway has not logged yet is registered now
        api_key_id = ApiKey.objects.get_or_create(account=account, external_id=target)[0].pk
    try:
        with transaction.atomic():
            budget = Budget.objects.create(account=account, scope=scope, target=target, api_key_id=api_key_id,
                                           amount_units=amount_units, period=period, mode=mode,
                                           alert_percentages=sorted(set(alert_percentages)))
            _spend_backfill(budget=budget, now=now or timezone.now())
    except IntegrityError:
        raise BudgetInvalid("scope", "the account has a budget with this scope, target and period") from None
    return budget


def budget_update(*, account: Account, budget_id: int, now: datetime | None = None, **changes) -> Budget:
    """Change a budget of `account` (Budget.DoesNotExist for another's); a new scope, target or period
    counts its period's spend again."""
    budget = Budget.objects.select_related("account").get(pk=budget_id, account=account)
    fields = {f: changes.get(f, getattr(budget, f)) for f in
              ("scope", "target", "amount_units", "period", "mode", "alert_percentages")}
    fields["target"] = fields["target"] or ""
    _checked(**fields)
    moved = any(fields[f] != getattr(budget, f) for f in ("scope", "target", "period"))
    for name, value in fields.items():
        setattr(budget, name, value)
    budget.alert_percentages = sorted(set(budget.alert_percentages))
    if budget.scope == Budget.Scope.KEY and moved:
        budget.api_key_id = ApiKey.objects.get_or_create(account=account, external_id=budget.target)[0].pk
    elif budget.scope != Budget.Scope.KEY:
        budget.api_key_id = None
    try:
        with transaction.atomic():
            budget.save()
            if moved:
                _spend_backfill(budget=budget, now=now or timezone.now())
                # Another scope, target or period limits other spend: its levels alert anew (re-armed,
                # their crossing count kept, so the next crossing gets a new dedupe key).
                BudgetAlertLevel.objects.filter(budget=budget).update(armed=True)
    except IntegrityError:
        raise BudgetInvalid("scope", "the account has a budget with this scope, target and period") from None
    return budget


def budget_delete(*, account: Account, budget_id: int) -> None:
    """Delete a budget of `account` (Budget.DoesNotExist for another's)."""
    Budget.objects.get(pk=budget_id, account=account).delete()


def budgets_recount(*, account: Account, now: datetime | None = None) -> None:
    """Count every budget's current period again (its zone or first weekday moved the edges)."""
    now = now or timezone.now()
    with transaction.atomic():
        for budget in Budget.objects.filter(account=account).select_related("account"):  # an account's few
            budget.account = account
            _spend_backfill(budget=budget, now=now)


def account_week_start_set(*, account: Account, week_start: int) -> None:
    """Set the first weekday of the account's budget weeks (0 Monday … 6 Sunday)."""
    if type(week_start) is not int or not 0 <= week_start <= 6:
        raise BudgetInvalid("week_start", "0 (Monday) to 6 (Sunday)")
    if week_start == account.week_start:
        return
    account.week_start = week_start
    account.save(update_fields=["week_start"])
    budgets_recount(account=account)
