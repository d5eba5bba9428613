"""The Celery app: every task on its workload's queue, the beat schedule loaded and runnable."""
import pytest

from config.celery import app

QUEUES = {
    "analytics.tasks.ingest_batch_split": "ingest",
    "analytics.tasks.ingest_chunk": "ingest",
    "analytics.tasks.ingest_stalled_requeue": "ingest",
    "analytics.tasks.ingest_files_expire": "ingest",
    "analytics.tasks.partitions_upkeep": "default",
    "analytics.tasks.partitions_retention": "default",
    "analytics.tasks.rollup_rankings_refresh": "rollups",
    "analytics.tasks.usage_prewarm": "rollups",
    "analytics.tasks.usage_refresh_later": "rollups",
    "analytics.tasks.report_reprice_apply": "reports",  # minutes at a router's size: off the ingest and rollup queues
    "billing.tasks.billing_after_debit": "billing",
    "billing.tasks.billing_grants_expire": "billing",
    "billing.tasks.billing_reservations_prune": "billing",
    "billing.tasks.billing_alerts_hourly": "billing",
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
    assert set(schedule) == {"rankings-refresh", "credits-expire", "ingest-stalled", "ingest-files-expire", "partitions-upkeep",
                             "partitions-retention", "reservations-prune", "alerts-hourly"}
    for entry in schedule.values():
        assert entry["task"] in app.tasks
    assert schedule["rankings-refresh"]["schedule"] == 300.0
    assert schedule["partitions-upkeep"]["schedule"] == 3600.0


@pytest.mark.parametrize("entry", ["partitions-upkeep", "partitions-retention"])
def test_partition_tasks_run_from_the_schedule(entry, db):
    """Each scheduled partition task runs as beat would send it (by name, to its queue)."""
    app.loader.import_default_modules()
    task = app.tasks[app.conf.beat_schedule[entry]["task"]]
    assert app.amqp.router.route({}, task.name)["queue"].name == "default"
    result = task.apply().get()
    assert isinstance(result, list)
