"""The Celery app: every task on its workload's queue, the beat schedule loaded and runnable."""
import pytest

from config.celery import app

QUEUES = {
    "analytics.tasks.ingest_batch_split": "ingest",
    "analytics.tasks.ingest_chunk": "ingest",
    "analytics.tasks.ingest_stalled_requeue": "ingest",
    "analytics.tasks.rollup_rankings_refresh": "rollups",
    "analytics.tasks.usage_prewarm": "rollups",
    "analytics.tasks.usage_refresh_later": "rollups",
    "billing.tasks.billing_after_debit": "billing",
    "billing.tasks.billing_grants_expire": "billing",
    "marketplace.tasks.catalog_sync_task": "default",
}


@pytest.mark.parametrize(("task", "queue"), QUEUES.items())
def test_each_task_is_routed_to_its_workload_queue(task, queue):
    app.loader.import_default_modules()
    assert task in app.tasks
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_registered_task_of_ours_has_a_route():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith(("analytics.", "billing.", "marketplace."))}
    assert ours == set(QUEUES)


def test_the_beat_schedule_is_loaded_and_names_real_tasks():
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert set(schedule) == {"rankings-refresh", "credits-expire", "ingest-stalled"}
    for entry in schedule.values():
        assert entry["task"] in app.tasks
    assert schedule["rankings-refresh"]["schedule"] == 300.0
