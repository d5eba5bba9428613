#!/usr/bin/env bash
# `make demo`: migrate, load the catalog, start a worker, generate and ingest demo traffic once,
# create the demo login, and serve on http://127.0.0.1:8000 (DEMO_PORT: another port). Run again, it
# reuses what is there. Without DATABASE_URL it runs on the embedded PostgreSQL in var/postgres/,
# started here and stopped when the demo stops.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo is a development server: DEBUG on (the settings default to production).
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
PY=.venv/bin/python
EVENTS="${DEMO_EVENTS:-200000}"
PORT="${DEMO_PORT:-8000}"
DAYS="${DEMO_DAYS:-35}"
mkdir -p var/demo
started=$(date +%s)

embedded=""
if [ -z "${DATABASE_URL:-}" ]; then
  $PY -m config.embedded_db start
  embedded=1
fi
stop_all() {  # the worker first (a warm shutdown finishes its task), then the database it writes to
  if [ -n "$worker" ]; then kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; fi
  if [ -n "$embedded" ]; then $PY -m config.embedded_db stop || true; fi
}
worker=""
trap stop_all EXIT
trap 'exit 130' INT TERM

$PY manage.py migrate --noinput
$PY manage.py catalog_sync

.venv/bin/celery -A config worker -Q ingest,rollups,reports,billing,default --loglevel=WARNING \
  --concurrency 2 -B --schedule var/demo/celerybeat-schedule >var/demo/worker.log 2>&1 &
worker=$!

if [ "$($PY manage.py shell -v 0 -c 'from analytics.models import Generation; print(int(Generation.objects.exists()))' | tail -n 1)" = "0" ]; then
  $PY manage.py generate_traffic --events "$EVENTS" --days "$DAYS" --seed 7 --hostile-app --out var/demo/traffic.jsonl
  $PY manage.py ingest var/demo/traffic.jsonl --wait
else
  echo "demo traffic already ingested: reusing it (delete var/ to start over)"
fi
$PY manage.py demo_setup
echo "demo ready in $(( $(date +%s) - started )) s"
echo
echo "  Tokengrid is running at http://127.0.0.1:$PORT"
echo "  Sign in at http://127.0.0.1:$PORT/accounts/login/ as  demo / tokengrid-demo"
echo "  (staff pages: /admin/ and /ops/ingest/ with the same login)"
echo
$PY manage.py runserver "127.0.0.1:$PORT" --noreload
