"""Account analytics pages: overview, activity, the generation log and usage reports.

Each view parses the query string, reads the signed-in user's current account (`request.account`,
set by `billing.access.account_required` from their own memberships) through one selector, and
renders. Nothing here takes an account id from the URL, so another account's data cannot be named.
"""
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render

from analytics.models import Generation
from billing.access import account_required
from core import charts
from core.csvutil import csv_stream
from core.http import csv_response
from core.params import ParamError
from core.timerange import TimeRange, date_range_parse

from . import exports, generation_log, params, queries, totals
from . import reports as usage_reports
from .cache import usage_watch

TOP_DIMENSIONS = {"model": "models", "api_key": "API keys", "app": "apps", "provider": "providers"}


def _period(request: HttpRequest) -> TimeRange:
    """The period of the query string; an unusable custom range shows why and the default period."""
    try:
        return params.period_parse(request.GET.get("period"), start=request.GET.get("start"),
                                  end=request.GET.get("end"))
    except ParamError as error:
        period = params.period_parse(None)
        messages.warning(request, f"{error} Showing {period.label.lower()}.")
        return period


def _period_context(request: HttpRequest, period: TimeRange) -> dict:
    custom = period.name == "custom"  # else the inputs offer the period shown, not what was refused
    return {"period": period, "periods": params.PERIOD_LABELS,
            "custom_start": request.GET.get("start") if custom else period.first_day.isoformat(),
            "custom_end": request.GET.get("end") if custom else period.last_day.isoformat()}


def _date_range(request: HttpRequest) -> tuple:
    """The report range of the query string (ParamError for an unusable date)."""
    return date_range_parse(request.GET.get("start"), request.GET.get("end"))


@account_required
def overview(request: HttpRequest) -> HttpResponse:
    """Spend, tokens, requests, cost per 1M tokens and cache hits against the previous period."""
    account_id = request.account.pk
    # Before reading: its next chunks move its version and prewarm these pages; the first view of an
    # account not watched starts a new version, so nothing cached before it is shown.
    usage_watch(account_id=account_id)
    period = _period(request)
    shown = queries.usage_overview(account_id=account_id, period=period)
    now, spend, tokens = shown.totals, shown.spend, shown.tokens
    unit = "hour" if not period.by_day else "day"
    return render(request, "account/overview.html", {
        **_period_context(request, period),
        "totals": now, "comparisons": totals.comparisons(now, shown.previous), "spend": spend, "tokens": tokens,
        "spend_chart": charts.stacked_bars(spend, title=f"Spend per {unit} by model", unit="USD"),
        "tokens_chart": charts.stacked_bars(tokens, title=f"Tokens per {unit} by model"),
        "tops": [(params.DIMENSION_LABELS[d], plural, d, shown.tops[d]) for d, plural in TOP_DIMENSIONS.items()],
        "balance_units": request.account.balance_units,
    })


@account_required
def activity(request: HttpRequest) -> HttpResponse:
    """One metric over time, grouped by up to two dimensions; every choice lives in the URL."""
    usage_watch(account_id=request.account.pk)  # before reading, as the overview
    period = _period(request)
    metric = request.GET.get("metric") if request.GET.get("metric") in totals.METRICS else "spend"
    group_by = params.group_by_parse(request.GET.getlist("group_by"))
    granularity = params.activity_granularity(period, request.GET.get("granularity"))
    result = queries.usage_activity(account_id=request.account.pk, period=period, metric=metric, group_by=group_by,
                                  granularity=granularity)
    title = f"{result.metric_label} per {granularity}"
    chart = (charts.stacked_bars(result.series, title=title, unit=result.metric_label) if result.additive
             else charts.lines(result.series, title=title, unit=result.metric_label))
    return render(request, "account/activity.html", {
        **_period_context(request, period), "activity": result, "chart": chart,
        "metrics": {k: v[0] for k, v in totals.METRICS.items()}, "dimensions": params.DIMENSION_LABELS,
        "granularities": params.GRANULARITIES, "group_first": group_by[0] if group_by else "",
        "group_second": group_by[1] if len(group_by) > 1 else "",
    })


FORM_BLANKS = ("model", "api_key", "provider", "app", "user", "tag", "session", "id", "status", "start", "end")


def _log_params(request: HttpRequest):
    """The query string the log reads; from its own form (`form=1`), a blank field means "any".

    A link (the explorer's cells, the cursor's pages) keeps `user=` as "no user" and `session=` as
    "no session"; the form's empty text boxes would otherwise mean exactly that.
    """
    query = request.GET.copy()
    if query.get("form"):
        for name in FORM_BLANKS:
            kept = [v for v in query.getlist(name) if v.strip()]
            if kept:
                query.setlist(name, kept)
            elif name in query:
                del query[name]
        del query["form"]
    return query


@account_required
def generations(request: HttpRequest) -> HttpResponse:
    """The generation log, newest first, filtered, paged by cursor, with a histogram of the filter's
    requests; unusable filters show why and all rows."""
    try:
        log_filter = generation_log.log_filter_parse(_log_params(request))
    except ParamError as error:
        messages.warning(request, f"{error} Showing every generation.")
        log_filter = generation_log.LogFilter()
    account_id = request.account.pk
    page = generation_log.generations_page(account_id=account_id, log_filter=log_filter,
                                           after=request.GET.get("after"), size=generation_log.PAGE_SIZE)
    query = log_filter.query()
    shown = {name: value for name, value in reversed(query)}  # the form shows a dimension's first value
    return render(request, "account/generations.html", {
        "page": page, "names": generation_log.names_for(page.rows, account_id=account_id),
        "choices": generation_log.filter_choices(account_id=account_id), "filters": shown,
        "histogram": generation_log.requests_histogram(account_id=account_id, log_filter=log_filter),
        "histogram_max_days": generation_log.HISTOGRAM_MAX_DAYS,
        "next_url": f"?{urlencode([*query, ('after', page.next_cursor)])}" if page.next_cursor else None,
        "first_url": f"?{urlencode(query)}" if request.GET.get("after") else None,
        "csv_query": urlencode(query),
    })


@account_required
def generation(request: HttpRequest, generation_id: str) -> HttpResponse:
    """Every field kept for one generation of the account, and its cost by kind of token."""
    try:
        row = generation_log.generation_of(account_id=request.account.pk, generation_id=generation_id)
    except Generation.DoesNotExist:
        raise Http404("No such generation in this account.") from None
    return render(request, "account/generation.html", {
        "g": row, "names": generation_log.names_for([row], account_id=request.account.pk),
        "tags": [t for t in row.tags.split(",") if t], "cost": generation_log.generation_cost(row)})


@account_required
def reports(request: HttpRequest) -> HttpResponse:
    """Downloads (usage.csv, generations.csv) and printable monthly reports."""
    try:
        first, last = _date_range(request)
    except ParamError as error:
        first, last = date_range_parse(None, None)
        messages.warning(request, f"{error} Showing the last 30 days.")
    return render(request, "account/reports.html", {
        "start": first, "end": last, "groups": params.REPORT_GROUPS, "default_groups": params.REPORT_DEFAULT,
        "usage_columns": exports.usage_csv_header(params.REPORT_DEFAULT), "generation_columns": generation_log.CSV_HEADER,
        "months": usage_reports.months_with_usage(account_id=request.account.pk),
    })


@account_required
def usage_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Usage per day x model x API key (or other `group_by`), streamed."""
    try:
        first, last = _date_range(request)
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    group_by = params.report_groups_parse(request.GET.get("group_by"))
    header = exports.usage_csv_header(group_by)
    rows = exports.usage_report(account_id=request.account.pk, first=first, last=last, group_by=group_by)
    return csv_response(csv_stream(header, rows),
                        filename=f"usage-{request.account.external_id}-{first}-{last}.csv")


@account_required
def generations_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every field of every generation in the range under the log's filters, streamed with flat memory."""
    try:
        first, last = _date_range(request)
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    try:
        log_filter = generation_log.log_filter_parse(_log_params(request))
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    return csv_response(generation_log.generations_csv(account_id=request.account.pk, first=first, last=last,
                                                       log_filter=log_filter),
                        filename=f"generations-{request.account.external_id}-{first}-{last}.csv")


@account_required
def monthly_report(request: HttpRequest, year: int, month: int) -> HttpResponse:
    """A printable monthly usage report: totals, charts and tables by model and key (pandas)."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise Http404
    report = usage_reports.monthly_usage(account_id=request.account.pk, year=year, month=month)
    return render(request, "account/monthly_report.html", {"report": report})
