"""Account analytics pages: overview, activity, the generation log and usage reports.

Each view parses the query string, reads the signed-in user's current account (`request.account`,
set by `billing.access.account_required` from their own memberships) through one selector, and
renders. Nothing here takes an account id from the URL, so another account's data cannot be named.
"""
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html_join

from analytics.horizon import horizon
from analytics.models import Generation
from billing.access import account_required
from billing.budget_selectors import reservations_settled
from billing.selectors import spend_forecast
from core import charts, numbers
from core.csvutil import csv_stream
from core.http import csv_response
from core.money import units_text
from core.params import ParamError
from core.timerange import TimeRange, date_range_parse

from . import (
    cost_breakdown,
    explorer,
    exports,
    generation_log,
    log_export,
    log_histogram,
    params,
    savings,
    totals,
)
from . import reports as usage_reports
from .cache import usage_watch
from .filters import Filters, filters_parse
from .names import NO_TEXT, filter_choices, names_for
from .overview import forecast_days, usage_overview

TOP_DIMENSIONS = {"model": "models", "api_key": "API keys", "app": "apps", "provider": "providers",
                  "user": "users", "tag": "tags"}


def _period(request: HttpRequest) -> TimeRange:
    """The period of the query string; an unusable custom range shows why and the default period."""
    zone = request.account.zone
    try:
        return params.period_parse(request.GET.get("period"), start=request.GET.get("start"),
                                  end=request.GET.get("end"), zone=zone)
    except ParamError as error:
        period = params.period_parse(None, zone=zone)
        messages.warning(request, f"{error} Showing {period.label.lower()}.")
        return period


def _period_context(request: HttpRequest, period: TimeRange) -> dict:
    custom = period.name == "custom"  # else the inputs offer the period shown, not what was refused
    return {"period": period, "periods": params.PERIOD_LABELS,
            "custom_start": request.GET.get("start") if custom else period.first_day.isoformat(),
            "custom_end": request.GET.get("end") if custom else period.last_day.isoformat()}


def _date_range(request: HttpRequest) -> tuple:
    """The report range of the query string (ParamError for an unusable date)."""
    return date_range_parse(request.GET.get("start"), request.GET.get("end"), zone=request.account.zone)


def _coverage(period: TimeRange, first_day) -> dict:
    """How much of the previous period the account's traffic covers, in whole days (a daily period only)."""
    previous = period.previous
    if previous is None or not period.by_day or first_day is None:
        return {}
    return {"covered_days": numbers.covered_days(first_day=first_day, window_start=previous.first_day,
                                                 window_days=period.days), "window_days": period.days}


@account_required
def overview(request: HttpRequest) -> HttpResponse:
    """Spend, tokens, requests, cost per 1M tokens and cache hits against the previous period."""
    account_id = request.account.pk
    # Before reading: its next chunks move its version and prewarm these pages; the first view of an
    # account not watched starts a new version, so nothing cached before it is shown.
    usage_watch(account_id=account_id)
    period = _period(request)
    shown = usage_overview(account_id=account_id, period=period)
    now, spend, tokens = shown.totals, shown.spend, shown.tokens
    unit = "hour" if not period.by_day else "day"
    return render(request, "account/overview.html", {
        **_period_context(request, period),
        "totals": now, "comparisons": totals.comparisons(now, shown.previous, **_coverage(period, shown.first_day)), "spend": spend, "tokens": tokens,
        "spend_chart": charts.stacked_bars(spend, title=f"Spend per {unit} by model", unit="USD"),
        "tokens_chart": charts.stacked_bars(tokens, title=f"Tokens per {unit} by model"),
        "tops": [(params.DIMENSION_LABELS[d], plural, d, shown.tops[d]) for d, plural in TOP_DIMENSIONS.items()],
        "balance_units": request.account.balance_units,
        "forecast": spend_forecast(account=request.account,
                                   by_day=forecast_days(account_id=account_id, zone=request.account.zone)),
        "savings": savings.account_savings(account_id=account_id),
    })


def _activity_view(request: HttpRequest, *, strict: bool = False) -> explorer.Activity:
    """The explorer's view of the query string. Unusable filters show why and are dropped, as the page
    does for a bad period; `strict` (the CSV) raises ParamError instead, so a download is never of
    another view than the one asked for."""
    if strict:
        params.period_parse(request.GET.get("period"), start=request.GET.get("start"), end=request.GET.get("end"),
                            zone=request.account.zone)
        filters = filters_parse(request.GET)
    else:
        try:
            filters = filters_parse(request.GET)
        except ParamError as error:
            messages.warning(request, f"{error} Showing the view without filters.")
            filters = Filters()
    period = _period(request)
    metric = request.GET.get("metric") if request.GET.get("metric") in totals.METRICS else "spend"
    group_by = params.group_by_parse(request.GET.getlist("group_by"))
    granularity = params.activity_granularity(period, request.GET.get("granularity"))
    return explorer.usage_activity(account_id=request.account.pk, period=period, metric=metric, group_by=group_by,
                                  granularity=granularity, filters=filters, top=params.top_parse(request.GET.get("top")),
                                  cumulative=request.GET.get("cumulative") == "1")


def _view_query(result: explorer.Activity, filters: Filters, **changes) -> str:
    """The explorer URL's query for `result` with `filters` (and `changes` to its other choices)."""
    period = result.period
    choices = {"metric": result.metric, "group_by": list(result.group_by), "granularity": result.granularity,
               "period": period.name,
               "top": result.top if result.top != params.TOP_DEFAULT else None, "cumulative": "1" if result.cumulative else None}
    if period.name == "custom":
        choices.update(start=period.first_day.isoformat(), end=period.last_day.isoformat())
    choices.update(changes)
    pairs = [(k, v) for k, values in choices.items() for v in (values if isinstance(values, list) else [values])
             if v is not None]
    return urlencode(pairs + filters.query())


def _log_link(result: explorer.Activity, key: tuple) -> str | None:
    """The generation log of one group's slice over the period; None when the filters cannot name it
    ("no tag" is not a filter value)."""
    filters = result.filters
    for dimension, value in zip(result.group_by, key, strict=True):
        if dimension == "tag" and value == "":
            return None
        filters = filters.narrowed(dimension, value)
    dates = [("start", result.period.first_day.isoformat()), ("end", result.period.last_day.isoformat())]
    return "/account/generations/?" + urlencode(filters.query() + dates)


def _options(options: list[tuple[int, str]], selected: set) -> str:
    """A select's options in one pass (an account can have seen hundreds of models: no template loop)."""
    return format_html_join("", '<option value="{}"{}>{}</option>',
                            ((i, " selected" if i in selected else "", name) for i, name in options))


def _without(filters: Filters, dimension: str, value) -> Filters:
    items = ((d, tuple(v for v in values if not (d == dimension and v == value))) for d, values in filters.items)
    return Filters(tuple((d, values) for d, values in items if values))


@account_required
def activity(request: HttpRequest) -> HttpResponse:
    """One metric over time, grouped by up to two dimensions and filtered on any; every choice lives in the URL."""
    usage_watch(account_id=request.account.pk)  # before reading, as the overview
    typed = [(d, request.GET.get(f"{d}_add", "").strip()) for d in ("user", "tag")]
    if any(value for _, value in typed) or any(f"{d}_add" in request.GET for d, _ in typed):
        # The page's text inputs add a user or a tag: back to the one URL of the view (empty ones drop).
        query = request.GET.copy()
        for dimension, value in typed:
            query.pop(f"{dimension}_add", None)
            if value and value not in query.getlist(dimension):
                query.appendlist(dimension, value)
        return redirect(f"{request.path}?{query.urlencode()}")
    result = _activity_view(request)
    title = f"{result.metric_label} per {result.granularity}{' (cumulative)' if result.cumulative else ''}"
    chart = (charts.stacked_bars(result.series, title=title, unit=result.metric_label) if result.additive
             else charts.lines(result.series, title=title, unit=result.metric_label))
    choices = filter_choices(account_id=request.account.pk)
    names = {d: dict(choices[d]) for d in choices}

    def chip_name(dimension: str, value) -> str:
        return names[dimension].get(value, f"#{value}") if dimension in names else value or NO_TEXT[dimension]

    chips = [(params.DIMENSION_LABELS[d], chip_name(d, v), f"?{_view_query(result, _without(result.filters, d, v))}")
             for d, values in result.filters.items for v in values]
    # Each row: its log link (every cell carries it) and per label the link narrowing this view to it.
    rows = []
    for row in result.groups:
        if row.key is None:
            rows.append((row, None, [(label, None) for label in row.labels]))
            continue
        narrow = [None if (d == "tag" and v == "") else f"?{_view_query(result, result.filters.narrowed(d, v))}"
                  for d, v in zip(result.group_by, row.key, strict=True)] or [None]
        rows.append((row, _log_link(result, row.key), list(zip(row.labels, narrow, strict=True))))
    return render(request, "account/activity.html", {
        **_period_context(request, result.period), "activity": result, "chart": chart, "rows": rows,
        "metrics": {k: v[0] for k, v in totals.METRICS.items()}, "dimensions": params.DIMENSION_LABELS,
        "granularities": params.GRANULARITIES, "group_first": result.group_by[0] if result.group_by else "",
        "group_second": result.group_by[1] if len(result.group_by) > 1 else "", "chips": chips,
        "tops": sorted({*params.TOP_CHOICES, result.top}),  # a bookmarked top=7 stays selected
        "selects": [(d, params.DIMENSION_LABELS[d], _options(options, set(result.filters.get(d))))
                    for d, options in choices.items()],
        "typed": {d: result.filters.get(d) for d in ("user", "tag")},
        "csv_url": f"/account/activity.csv?{_view_query(result, result.filters)}",
        "log_horizon": _log_horizon(result),
    })


def _log_horizon(result: explorer.Activity) -> datetime | None:
    """The first moment the generation log still holds, when this view is summed from it and starts before
    it: retention has dropped older months (PostgreSQL)."""
    if not result.from_generations:
        return None
    kept_from = horizon()
    return kept_from if kept_from and result.period.start < kept_from else None


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
def activity_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The explorer's current view as CSV: one row per bucket x group (the top groups, then Other), in
    bucket order; the bucket, the group's labels, the metric (exact: USD as decimals, rates as shares;
    running sums when the view is cumulative), then that cell's requests, tokens and spend (USD).
    Bucket x group rows rather than the page's groups table: the same rows whatever the period's length,
    and ready for a pivot. Unusable filters or period answer 400 (the page warns and drops them)."""
    try:
        result = _activity_view(request, strict=True)
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    header = ["bucket", *(result.group_labels or ["group"]), result.metric, "requests", "tokens", "spend_usd"]

    def rows():
        for i, bucket in enumerate(result.series.periods):
            for labels, values in result.buckets:
                cell = values[i]
                value = cell.value(result.metric) if cell.requests else None
                labels = (*labels, *[""] * (len(result.group_by) - len(labels)))  # Other: one label
                yield [bucket, *labels, "" if value is None else value, cell.requests, cell.tokens,
                       units_text(cell.spend_units)]

    period = result.period
    return csv_response(csv_stream(header, rows()),
                        filename=f"activity-{request.account.external_id}-{period.first_day}-{period.last_day}.csv")


@account_required
def generations(request: HttpRequest) -> HttpResponse:
    """The generation log, newest first, filtered, paged by cursor, with a histogram of the filter's
    requests; unusable filters show why and all rows."""
    try:
        log_filter = generation_log.log_filter_parse(_log_params(request), zone=request.account.zone)
    except ParamError as error:
        messages.warning(request, f"{error} Showing every generation.")
        log_filter = generation_log.LogFilter()
    account_id = request.account.pk
    page = generation_log.generations_page(account_id=account_id, log_filter=log_filter,
                                           after=request.GET.get("after"), size=generation_log.PAGE_SIZE)
    query = log_filter.query()
    shown = {name: value for name, value in reversed(query)}  # the form shows a dimension's first value
    return render(request, "account/generations.html", {
        "page": page, "names": names_for(page.rows, account_id=account_id),
        "held": reservations_settled(account_id=account_id, generation_ids=[g.id for g in page.rows]),
        "choices": filter_choices(account_id=account_id), "filters": shown,
        "histogram": log_histogram.requests_histogram(account_id=account_id, log_filter=log_filter),
        "histogram_max_days": log_histogram.HISTOGRAM_MAX_DAYS,
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
        "g": row, "names": names_for([row], account_id=request.account.pk),
        "tags": [t for t in row.tags.split(",") if t], "cost": cost_breakdown.generation_cost(row),
        "reservation": reservations_settled(account_id=request.account.pk, generation_ids=[row.id]).get(row.id)})


@account_required
def reports(request: HttpRequest) -> HttpResponse:
    """Downloads (usage.csv, generations.csv) and printable monthly reports."""
    try:
        first, last = _date_range(request)
    except ParamError as error:
        first, last = date_range_parse(None, None, zone=request.account.zone)
        messages.warning(request, f"{error} Showing the last 30 days.")
    return render(request, "account/reports.html", {
        "start": first, "end": last, "groups": params.REPORT_GROUPS, "default_groups": params.REPORT_DEFAULT,
        "usage_columns": exports.usage_csv_header(params.REPORT_DEFAULT), "generation_columns": log_export.CSV_HEADER,
        "months": usage_reports.months_with_usage(account_id=request.account.pk, zone=request.account.zone),
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
    rows = exports.usage_report(account_id=request.account.pk, first=first, last=last, group_by=group_by,
                                zone=request.account.zone)
    return csv_response(csv_stream(header, rows),
                        filename=f"usage-{request.account.external_id}-{first}-{last}.csv")


@account_required
def generations_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every field of every generation in the range under the log's filters, streamed with flat memory."""
    try:
        first, last = _date_range(request)
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    zone = request.account.zone
    try:
        log_filter = generation_log.log_filter_parse(_log_params(request), zone=zone)
    except ParamError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    return csv_response(log_export.generations_csv(account_id=request.account.pk, first=first, last=last,
                                                       log_filter=log_filter, zone=zone),
                        filename=f"generations-{request.account.external_id}-{first}-{last}.csv")


@account_required
def monthly_report(request: HttpRequest, year: int, month: int) -> HttpResponse:
    """A printable monthly usage report: totals, charts and tables by model and key (pandas)."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise Http404
    report = usage_reports.monthly_usage(account_id=request.account.pk, year=year, month=month,
                                         zone=request.account.zone)
    return render(request, "account/monthly_report.html", {"report": report})
