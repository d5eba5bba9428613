"""The budgets page under credits: every budget with its use, holds, reset and pace; owners edit.

Viewers and members read; owners create, change and delete budgets and choose the weekday budget
weeks start on. Every budget id in a form is looked up within the current account (404 otherwise).
"""
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from core.money import units_to_usd, usd_to_units
from core.params import int64_or_404

from . import budgets
from .access import account_required
from .budget_selectors import budget_pace, budget_share, budget_uses
from .credit_forms import BudgetForm, WeekStartForm
from .credit_views import OWNER, _form_error
from .models import Budget
from .pace import fired_forecasts
from .periods import WEEKDAYS


@account_required
@require_safe
def budgets_page(request: HttpRequest) -> HttpResponse:
    """Show each budget: use in its period as a bar, what open reservations hold, the reset, the pace."""
    now = timezone.now()
    account = request.account
    fired = fired_forecasts(account=account, now=now)
    rows = [{"use": use, "share": budget_share(use), "pace": budget_pace(use=use, account=account, now=now),
             "fired": fired.get(use.budget.pk),
             "form": BudgetForm(initial={"scope": use.budget.scope, "target": use.budget.target,
                                         "amount": f"{units_to_usd(use.budget.amount_units).normalize():f}", "period": use.budget.period,
                                         "mode": use.budget.mode,
                                         "alerts": ", ".join(map(str, use.budget.alert_percentages))},
                                auto_id=f"id_b{use.budget.pk}_%s")}
            for use in budget_uses(account=account, now=now)]
    return render(request, "account/budgets.html", {
        "rows": rows, "is_owner": request.account_ctx.can(OWNER), "create_form": BudgetForm(auto_id="id_new_%s"),
        "week_form": WeekStartForm(initial={"week_start": account.week_start}),
        "week_start_name": WEEKDAYS[account.week_start]})


def _fields(form: BudgetForm) -> dict:
    data = form.cleaned_data
    return {"scope": data["scope"], "target": data["target"].strip(), "amount_units": usd_to_units(data["amount"]),
            "period": data["period"], "mode": data["mode"], "alert_percentages": data["alerts"]}


@account_required(role=OWNER, methods=("POST",))
def budget_save(request: HttpRequest) -> HttpResponse:
    """Create a budget, or change the one named by `budget` (404 for another account's)."""
    form = BudgetForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form, "Check the budget."))
        return redirect("billing:budgets")
    try:
        if request.POST.get("budget"):
            budget = budgets.budget_update(account=request.account, budget_id=int64_or_404(request.POST["budget"]),
                                           **_fields(form))
        else:
            budget = budgets.budget_create(account=request.account, **_fields(form))
    except Budget.DoesNotExist:
        raise Http404 from None
    except budgets.BudgetInvalid as error:
        messages.error(request, f"Check the budget: {error.field} — {error.reason}.")
        return redirect("billing:budgets")
    messages.success(request, f"Budget saved: {budget}.")
    return redirect("billing:budgets")


@account_required(role=OWNER, methods=("POST",))
def budget_delete(request: HttpRequest) -> HttpResponse:
    """Delete the budget named by `budget` (404 for another account's)."""
    try:
        budgets.budget_delete(account=request.account, budget_id=int64_or_404(request.POST.get("budget")))
    except Budget.DoesNotExist:
        raise Http404 from None
    messages.success(request, "Budget deleted.")
    return redirect("billing:budgets")


@account_required(role=OWNER, methods=("POST",))
def budget_week(request: HttpRequest) -> HttpResponse:
    """Choose the weekday budget weeks start on."""
    form = WeekStartForm(request.POST)
    if form.is_valid():
        budgets.account_week_start_set(account=request.account, week_start=form.cleaned_data["week_start"])
        messages.success(request, f"Budget weeks start on {WEEKDAYS[form.cleaned_data['week_start']]}.")
    else:
        messages.error(request, "Choose a weekday.")
    return redirect("billing:budgets")
