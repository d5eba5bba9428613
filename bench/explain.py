#!/usr/bin/env python
"""EXPLAIN (ANALYZE, BUFFERS) of every page and report query, on a PostgreSQL database with traffic.

    .venv/bin/python bench/explain.py --database h9_1m [--out docs/plans/1m.md]

Renders each page and report as the busiest account's member (rankings, the busiest model's,
app's and provider's pages, the account overview and activity, the generation log's first page,
a filtered page, a later page by cursor and a detail page, usage.csv for the busiest month; the
account API's usage and generations call the same selectors) with the cache switched off,
captures the SQL each one runs, and explains every distinct SELECT that reads a rollup or raw
generations. generations.csv streams
through COPY on the raw cursor, so its SELECT is explained as built by analytics.usage.log_export,
over the account's newest 7 days. Everything runs in one transaction that is rolled back (the
bench user, its session): the data is left as it was, and it is never migrated. It first runs
ANALYZE (planner statistics, as autovacuum would after a bulk load; `--no-analyze` skips it).

Writes a markdown file: per query the page, the statement (shortened), execution time, shared
buffers hit/read, the plan trimmed to its first lines, and a verdict: `index`, `rollup` (a rollup
read with no index, fine while small) or `CHECK` (a sequential scan of raw generations, or of a
rollup past --seq-rows rows).
"""
import argparse
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)

ROLLUPS = ("analytics_endpointhour", "analytics_endpointday", "analytics_endpointhistogram", "analytics_appday",
           "analytics_accountday", "analytics_accounthour")
RAW = ("analytics_generation", "analytics_generationkey")


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    parser.add_argument("--no-analyze", action="store_true",
                        help="skip ANALYZE (planner statistics, as autovacuum keeps them after a bulk load)")
    parser.add_argument("--plan-lines", type=int, default=18)
    parser.add_argument("--seq-rows", type=int, default=100_000,
                        help="a sequential scan of a rollup returning more rows than this is flagged")
    options = parser.parse_args()
    os.environ.update(production_env(options.database))
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.db.models import Sum
    from django.db.models.functions import TruncMonth
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from analytics.models import AccountDay, AppDay, EndpointDay, Generation
    from analytics.usage import generation_log, log_export
    from billing.models import Membership
    from marketplace.models import App, Model, Provider

    if not options.no_analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # statistics only; without them the plans are of a table never vacuumed
    results: list[dict] = []
    header: dict = {}
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}):
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM analytics_generation")
                    header["generations"] = cursor.fetchone()[0]
                    cursor.execute("SELECT version()")
                    header["version"] = cursor.fetchone()[0].split(" on ")[0]
                busiest = AccountDay.objects.values("account_id").annotate(n=Sum("requests")).order_by("-n").first()
                account_id = busiest["account_id"]
                header["account_requests"] = busiest["n"]
                model = Model.objects.get(pk=EndpointDay.objects.values("model_id").annotate(n=Sum("requests"))
                                          .order_by("-n").first()["model_id"])
                provider = Provider.objects.get(pk=EndpointDay.objects.values("provider_id")
                                                .annotate(n=Sum("requests")).order_by("-n").first()["provider_id"])
                app = App.objects.get(pk=AppDay.objects.exclude(app_id=0).values("app_id")
                                      .annotate(n=Sum("requests")).order_by("-n").first()["app_id"])
                newest = Generation.objects.filter(account_id=account_id).order_by("-created_at", "-id").first()
                month = (AccountDay.objects.filter(account_id=account_id).annotate(m=TruncMonth("day")).values("m")
                         .annotate(n=Sum("requests")).order_by("-n").first()["m"])
                last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
                day = newest.created_at.date()
                user, _ = get_user_model().objects.get_or_create(username="bench-explain")
                Membership.objects.get_or_create(user=user, account_id=account_id, defaults={"role": "viewer"})
                client = Client()
                client.force_login(user)
                later = generation_log.generations_page(account_id=account_id,
                                                        log_filter=generation_log.LogFilter(), size=5000).next_cursor
                pages = {
                    "rankings (month, tokens)": "/rankings/?window=month",
                    "rankings (week, spend)": "/rankings/?window=week&metric=spend",
                    "model page": model.get_absolute_url(),
                    "provider page": provider.get_absolute_url(),
                    "app page": app.get_absolute_url(),
                    "account overview (30 days)": "/account/?period=30d",
                    "account activity (30 days, model x key, by day)":
                        "/account/activity/?metric=spend&group_by=model&group_by=api_key&granularity=day&period=30d",
                    "generation log, first page": "/account/generations/",
                    "generation log, filtered by model and a day": f"/account/generations/?model={newest.model_id}"
                                                                    f"&start={day}&end={day}",
                    "generation log, page after 5,000 rows": f"/account/generations/?after={later}",
                    "generation detail": f"/account/generations/{newest.id}/",
                    "usage.csv (busiest month)": f"/account/reports/usage.csv?start={month}&end={last}",
                }
                for name, url in pages.items():
                    with CaptureQueriesContext(connection) as captured:
                        response = client.get(url)
                        if response.streaming:
                            for _ in response.streaming_content:
                                pass
                    if response.status_code != 200:
                        sys.exit(f"{name}: {url} answered {response.status_code}")
                    for query in captured.captured_queries:
                        results.append({"page": name, "url": url, "sql": query["sql"]})
                explained = _explain_all(connection, results, options)
                # Last: the export sets its own planner options (SET LOCAL) before its COPY, and they
                # stay for the rest of this transaction. Its SELECT is captured, not run, and explained
                # under those options.
                explained += _explain_all(connection, [_export_query(log_export, connection, account_id, day)],
                                          options)
                raise Rollback
        except Rollback:
            pass
    text = _markdown(header, explained, options)
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(text)
        print(f"wrote {options.out}: {len(explained)} queries, "
              f"{sum(1 for e in explained if e['verdict'] == 'CHECK')} to check", file=sys.stderr)
    else:
        print(text)


def _export_query(log_export, connection, account_id: int, day) -> dict:
    """The SELECT inside generations.csv's COPY over the account's newest 7 days, with its parameters."""
    import psycopg

    captured = {}

    def capture(cursor, sql, params):
        captured.update(sql=sql, params=params)
        return iter(())

    real, log_export._copy_blocks = log_export._copy_blocks, capture
    try:
        list(log_export.generations_csv(account_id=account_id, first=day - timedelta(days=6), last=day))
    finally:
        log_export._copy_blocks = real
    inner = re.match(r"COPY \((.*)\) TO STDOUT", captured["sql"], re.S)[1]
    sql = psycopg.ClientCursor(connection.connection).mogrify(inner, captured["params"])
    return {"page": "generations.csv (7 days)", "url": "COPY (SELECT ...) TO STDOUT", "sql": sql}


def _interesting(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT") and any(t in sql for t in (*ROLLUPS, *RAW))


def _explain_all(connection, results: list[dict], options) -> list[dict]:
    seen, explained = set(), []
    with connection.cursor() as cursor:
        for item in results:
            sql = item["sql"]
            shape = re.sub(r"'[^']*'|\b\d+\b", "?", sql)
            if not _interesting(sql) or shape in seen:
                continue
            seen.add(shape)
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
            explained.append({**item, "plan": plan, **_verdict(plan, options)})
    return explained


def _verdict(plan: list[str], options) -> dict:
    text = "\n".join(plan)
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    top = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
    problems = []
    for line in plan:
        scan = re.search(r"Seq Scan on (\w+).*actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)", line)
        if not scan:
            continue
        table, rows, loops = scan[1], int(scan[2]), int(scan[3])
        if table.startswith(RAW):
            problems.append(f"sequential scan of {table}")
        elif table.startswith(ROLLUPS) and rows * loops > options.seq_rows:
            problems.append(f"sequential scan of {table} ({rows * loops} rows)")
    partitions = sorted(set(re.findall(r"on (analytics_generation_\w+)", text)))
    touched = [p for p in partitions if not re.search(rf"on {p}\b[^\n]*never executed", text)]
    uses_index = "Index" in text
    verdict = "CHECK" if problems else ("index" if uses_index else "rollup")
    return {"execution_ms": float(execution[1]) if execution else None,
            "buffers": f"hit {top[1]}, read {top[2] or 0}" if top else "",
            "verdict": verdict, "problems": problems, "partitions": touched}


def _markdown(header: dict, explained: list[dict], options) -> str:
    lines = [f"# Query plans: {options.database}", "",
             f"{header['generations']:,} generations; busiest account {header['account_requests']:,} requests; "
             f"{header['version']}. Written by `.venv/bin/python bench/explain.py --database {options.database}`"
             " (EXPLAIN (ANALYZE, BUFFERS), cache off, server settings as pages get them; plans trimmed).", "",
             "| page | query reads | ms | buffers | verdict |", "|---|---|---|---|---|"]
    for n, item in enumerate(explained, 1):
        tables = sorted(set(re.findall(r"\b(analytics_\w+|billing_\w+|marketplace_\w+)", item["sql"])))
        reads = ", ".join(t.replace("analytics_", "") for t in tables if t.startswith("analytics_"))
        note = f" ({'; '.join(item['problems'])})" if item["problems"] else ""
        lines.append(f"| [{n}](#q{n}) {item['page']} | {reads} | {item['execution_ms']} | {item['buffers']} |"
                     f" {item['verdict']}{note} |")
    for n, item in enumerate(explained, 1):
        sql = re.sub(r"\s+", " ", item["sql"])
        sql = sql if len(sql) <= 600 else sql[:600] + " …"
        lines += ["", f"<a id=\"q{n}\"></a>", f"## {n}. {item['page']}", "", f"`{item['url']}`", "",
                  f"```sql\n{sql}\n```", ""]
        if item["partitions"]:
            lines += [f"Partitions read: {', '.join(item['partitions'])}", ""]
        plan = item["plan"]
        shown = plan[: options.plan_lines]
        if len(plan) > options.plan_lines:
            shown.append(f"  … {len(plan) - options.plan_lines} more lines")
            shown += [line for line in plan[options.plan_lines:] if line.startswith(("Planning", "Execution"))]
        lines += ["```", *shown, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
