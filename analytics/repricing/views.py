"""Staff pages of repricing: enter a price from a date and see the dry run; confirm to apply (staff only)."""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from analytics.ingest.prices import pricebook_reset
from analytics.models import Reprice
from billing.models import Account
from core.numbers import money
from marketplace.models import PendingPriceChange
from marketplace.price_history import endpoint_price_set

from . import services, tasks
from .forms import RepriceForm


@staff_member_required
def ops_reprices(request: HttpRequest) -> HttpResponse:
    """List reprices; enter a price from a date and plan its reprice (the dry run)."""
    form = RepriceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        start = form.moment(data["start"])
        price = endpoint_price_set(model_id=data["model"].pk, provider_id=data["provider"].pk, valid_from=start,
                                   prompt=data["prompt"], completion=data["completion"],
                                   cache_read=data["cache_read"], reasoning=data["reasoning"])
        pricebook_reset()  # this process; workers reread the price book within minutes (README "Repricing")
        plan = services.reprice_plan(model_id=data["model"].pk, provider_id=data["provider"].pk, price_id=price.pk,
                                     start=start, end=form.moment(data["end"]) if data["end"] else None,
                                     created_by=request.user.get_username())
        messages.success(request, f"Reprice {plan.reprice_id} planned: {plan.requests} request(s) to change. "
                                  "Check the figures below, then apply.")
        return redirect("repricing:ops-reprice", reprice_id=plan.reprice_id)
    reprices = Reprice.objects.select_related("model", "provider")[:100]
    pending = (PendingPriceChange.objects.filter(status=PendingPriceChange.Status.PENDING)
               .select_related("endpoint__model", "endpoint__provider").order_by("detected_at", "pk")[:200])
    return render(request, "analytics/ops_reprices.html", {"form": form, "reprices": reprices, "pending": pending})


@staff_member_required
@require_POST
def ops_change_plan(request: HttpRequest, change_id: int) -> HttpResponse:
    """Take up a held-back catalog price change: its price from its start, and the dry run of its reprice."""
    get_object_or_404(PendingPriceChange, pk=change_id)
    try:
        plan = services.pending_change_plan(change_id=change_id, created_by=request.user.get_username())
    except ValueError as error:
        messages.error(request, f"{error}.")
        return redirect("repricing:ops-reprices")
    pricebook_reset()  # this process; workers reread the price book within minutes (README "Repricing")
    messages.success(request, f"Price change {change_id} taken up: the new price is in force, and reprice "
                              f"{plan.reprice_id} is planned for the {plan.requests} request(s) billed at the old one. "
                              "Check the figures below, then apply.")
    return redirect("repricing:ops-reprice", reprice_id=plan.reprice_id)


@staff_member_required
@require_POST
def ops_change_dismiss(request: HttpRequest, change_id: int) -> HttpResponse:
    """Keep the old price of a held-back change for good."""
    get_object_or_404(PendingPriceChange, pk=change_id)
    try:
        services.pending_change_dismiss(change_id=change_id)
    except ValueError as error:
        messages.error(request, f"{error}.")
    else:
        messages.info(request, f"Price change {change_id} dismissed: the old price stays, and catalog_sync will not "
                               "raise it again.")
    return redirect("repricing:ops-reprices")


@staff_member_required
def ops_reprice(request: HttpRequest, reprice_id: int) -> HttpResponse:
    """Show a reprice's dry run per account (and, once applied, what it changed)."""
    reprice = get_object_or_404(Reprice.objects.select_related("model", "provider", "price"), pk=reprice_id)
    plan = services.reprice_plan_read(reprice_id=reprice_id)
    applied = services.reprice_applied_read(reprice_id=reprice_id) if reprice.status != Reprice.Status.PLANNED else []
    names = dict(Account.objects.filter(pk__in=[a.account_id for a in plan.accounts + applied]).values_list(
        "pk", "external_id"))
    return render(request, "analytics/ops_reprice.html", {
        "reprice": reprice, "plan": plan, "names": names, "applied": applied,
        "rows": [(names.get(a.account_id, a.account_id), a) for a in plan.accounts],
        "applied_rows": [(names.get(a.account_id, a.account_id), a) for a in applied]})


@staff_member_required
@require_POST
def ops_reprice_apply(request: HttpRequest, reprice_id: int) -> HttpResponse:
    """Queue the apply of a planned reprice (a task: minutes at a router's size); once applied, nothing."""
    reprice = get_object_or_404(Reprice, pk=reprice_id)
    if reprice.status == Reprice.Status.APPLIED:
        messages.info(request, f"Reprice {reprice_id} was already applied: nothing changed.")
    else:
        actor = request.user.get_username()
        transaction.on_commit(lambda: tasks.reprice_apply_task.delay(reprice_id, actor))
        difference = services.reprice_plan_read(reprice_id=reprice_id).difference_units
        messages.success(request, f"Reprice {reprice_id} is being applied ({money(difference)} in all"
                                  " by the dry run): reload this page, its status says when it is done.")
    return redirect("repricing:ops-reprice", reprice_id=reprice_id)
