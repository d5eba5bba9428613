#!/usr/bin/env python
"""A reprice of one endpoint from a date, on a PostgreSQL database already filled by ingestion.

    .venv/bin/python bench/reprice.py --database D --model SLUG --provider NAME --since YYYY-MM-DD
        [--until YYYY-MM-DD] [--factor 1.1] [--batch-rows N] [--verify]

Enters the endpoint's price from --since 00:00 UTC (the price in force then, times --factor: a
correction), plans the reprice (the dry run) and applies it, through the services staff use
(analytics.repricing). Prints, as one JSON line: the endpoint's generations in the range, the
plan's seconds, requests and accounts, the apply's seconds, batches and the longest and median
batch transaction (how long a chunk of ingestion could wait on a rollup row it holds), the
accounts posted, and with --verify whether the endpoint's daily rollup still equals a direct
aggregate of its generations over the range. It writes to the database (a price row, the
generations' costs, rollups, ledger entries): run it on a bench copy. The busiest endpoint of a
database: the first row of `SELECT model_id, provider_id, count(*) FROM analytics_endpointday
GROUP BY 1, 2 ORDER BY 3 DESC`.
"""
import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)


def day_start(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--model", required=True, help="the model's slug")
    parser.add_argument("--provider", required=True, help="the provider's name")
    parser.add_argument("--since", required=True, type=day_start, help="YYYY-MM-DD (UTC)")
    parser.add_argument("--until", type=day_start, help="YYYY-MM-DD, exclusive (default: the next price, else now)")
    parser.add_argument("--factor", type=Decimal, default=Decimal("1.1"), help="new price / price in force")
    parser.add_argument("--batch-rows", type=int, help="rows per transaction (default REPRICE_BATCH_ROWS)")
    parser.add_argument("--verify", action="store_true", help="compare the daily rollup with the generations")
    options = parser.parse_args()
    os.environ.update(production_env(options.database))

    import django

    django.setup()
    from django.db import connection

    from analytics.models import Reprice
    from analytics.repricing.services import reprice_apply, reprice_plan
    from marketplace.models import Endpoint
    from marketplace.price_history import endpoint_price_set
    from marketplace.pricing import prices_in_force

    endpoint = Endpoint.objects.select_related("model", "provider").get(model__slug=options.model,
                                                                         provider__name=options.provider)
    in_force, _ = prices_in_force(model_id=endpoint.model_id, provider_id=endpoint.provider_id, at=options.since)
    places = Decimal(1).scaleb(-15)

    def scaled(value: Decimal | None) -> Decimal | None:
        return None if value is None else (value * options.factor).quantize(places)

    price = endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id, valid_from=options.since,
                               prompt=scaled(in_force.prompt), completion=scaled(in_force.completion),
                               cache_read=scaled(in_force.cache_read), reasoning=scaled(in_force.reasoning))
    started = time.perf_counter()
    plan = reprice_plan(model_id=endpoint.model_id, provider_id=endpoint.provider_id, price_id=price.pk,
                        start=options.since, end=options.until, created_by="bench")
    plan_seconds = time.perf_counter() - started
    reprice = Reprice.objects.get(pk=plan.reprice_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_generation WHERE model_id = %s AND provider_id = %s"
                       " AND created_at >= %s AND created_at < %s",
                       [endpoint.model_id, endpoint.provider_id, reprice.start, reprice.end])
        in_range = cursor.fetchone()[0]
    started = time.perf_counter()
    applied = reprice_apply(reprice_id=plan.reprice_id, actor="bench", batch_rows=options.batch_rows)
    apply_seconds = time.perf_counter() - started
    batches = applied.batch_seconds or [0.0]
    result = {"database": options.database, "model": options.model, "provider": options.provider,
              "since": f"{reprice.start:%Y-%m-%d}", "until": reprice.end.isoformat(), "generations_in_range": in_range,
              "plan": {"seconds": round(plan_seconds, 2), "requests": plan.requests, "accounts": len(plan.accounts),
                       "excluded_gateway": plan.excluded_gateway, "excluded_insurance": plan.excluded_insurance,
                       "difference_units": plan.difference_units},
              "apply": {"seconds": round(apply_seconds, 2), "requests": applied.requests, "batches": applied.batches,
                        "longest_batch_seconds": round(max(batches), 3),
                        "median_batch_seconds": round(statistics.median(batches), 3),
                        "accounts_posted": len(applied.accounts_posted),
                        "equals_plan": applied.difference_units == plan.difference_units}}
    if options.verify:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT SUM(CASE WHEN is_byok THEN 0 ELSE cost_units END) FROM analytics_generation"
                " WHERE model_id = %(m)s AND provider_id = %(p)s AND created_at >= %(s)s::date AND created_at < %(e)s::date),"
                " (SELECT SUM(spend_units) FROM analytics_endpointday WHERE model_id = %(m)s AND provider_id = %(p)s"
                " AND day >= %(s)s::date AND day < %(e)s::date)",
                {"m": endpoint.model_id, "p": endpoint.provider_id, "s": reprice.start.date(),
                 "e": (reprice.end.date() if reprice.end.time() == datetime.min.time() else
                       reprice.end.date().fromordinal(reprice.end.date().toordinal() + 1))})
            generations, rollup = cursor.fetchone()
        result["verify"] = {"generations_spend_units": int(generations or 0), "endpointday_spend_units": int(rollup or 0),
                            "equal": generations == rollup}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
