"""The Celery app: every task on its workload's queue, the beat schedule loaded and runnable."""
import pytest

from config.celery import app

QUEUES = {
    "analytics.ingest.tasks.ingest_batch_split": "ingest",
    "analytics.ingest.tasks.ingest_chunk": "ingest",
    "analytics.ingest.tasks.ingest_stalled_requeue": "ingest",
    "analytics.ingest.tasks.ingest_files_expire": "ingest",
    "analytics.ingest.tasks.partitions_upkeep": "default",
    "analytics.ingest.tasks.partitions_retention": "default",
    "analytics.rankings.tasks.rollup_rankings_refresh": "rollups",
    "analytics.usage.tasks.usage_prewarm": "rollups",
    "analytics.usage.tasks.usage_refresh_later": "rollups",
    # minutes at a router's size: off the ingest and rollup queues
    "analytics.repricing.tasks.reprice_apply_task": "reports",
    "billing.tasks.billing_after_debit": "billing",
    "billing.tasks.billing_grants_expire": "billing",
    "billing.tasks.billing_reservations_prune": "billing",
    "billing.tasks.alert_delivery_send": "billing",
    "billing.tasks.alert_deliveries_due": "billing",
    "billing.tasks.billing_alerts_hourly": "billing",
    "marketplace.tasks.catalog_sync_task": "default",
}
# The names the tasks had before they followed their modules, kept for one release (core.celery_names).
OLD_NAMES = {
    "analytics.tasks.ingest_batch_split": "analytics.ingest.tasks.ingest_batch_split",
    "analytics.tasks.ingest_chunk": "analytics.ingest.tasks.ingest_chunk",
    "analytics.tasks.ingest_stalled_requeue": "analytics.ingest.tasks.ingest_stalled_requeue",
    "analytics.tasks.ingest_files_expire": "analytics.ingest.tasks.ingest_files_expire",
    "analytics.tasks.partitions_upkeep": "analytics.ingest.tasks.partitions_upkeep",
    "analytics.tasks.partitions_retention": "analytics.ingest.tasks.partitions_retention",
    "analytics.tasks.rollup_rankings_refresh": "analytics.rankings.tasks.rollup_rankings_refresh",
    "analytics.tasks.usage_prewarm": "analytics.usage.tasks.usage_prewarm",
    "analytics.tasks.usage_refresh_later": "analytics.usage.tasks.usage_refresh_later",
    "analytics.tasks.report_reprice_apply": "analytics.repricing.tasks.reprice_apply_task",
}


def test_each_task_is_named_after_its_module():
    app.loader.import_default_modules()
    for name in QUEUES:
        task = app.tasks[name]
        assert name == f"{task.run.__module__}.{task.run.__name__}"


@pytest.mark.parametrize(("old", "new"), OLD_NAMES.items())
def test_an_old_name_runs_the_same_function_with_the_same_options_on_the_same_queue(old, new):
    app.loader.import_default_modules()
    old_task, new_task = app.tasks[old], app.tasks[new]
    def function(task):
        return getattr(task.__wrapped__, "__func__", task.__wrapped__)  # a bound task's is a method

    assert function(old_task) is function(new_task)
    for option in ("acks_late", "autoretry_for", "max_retries", "retry_backoff", "ignore_result", "typing"):
        assert getattr(old_task, option, None) == getattr(new_task, option, None), option
    assert app.amqp.router.route({}, old)["queue"].name == QUEUES[new]


@pytest.mark.parametrize(("task", "queue"), QUEUES.items())
def test_each_task_is_routed_to_its_workload_queue(task, queue):
    app.loader.import_default_modules()
    assert task in app.tasks
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_registered_task_of_ours_has_a_route():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith(("analytics.", "billing.", "marketplace."))}
    assert ours == set(QUEUES) | set(OLD_NAMES)


def test_the_beat_schedule_is_loaded_and_names_real_tasks():
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert set(schedule) == {"rankings-refresh", "credits-expire", "ingest-stalled", "ingest-files-expire", "partitions-upkeep",
                             "partitions-retention", "reservations-prune", "alert-deliveries-due",
                             "alerts-hourly"}
    for entry in schedule.values():
        assert entry["task"] in app.tasks
    assert schedule["rankings-refresh"]["schedule"] == 300.0
    assert schedule["partitions-upkeep"]["schedule"] == 3600.0
    assert schedule["alert-deliveries-due"]["schedule"] == 15.0  # the first retry (30 s) goes within a minute


@pytest.mark.parametrize("entry", ["partitions-upkeep", "partitions-retention"])
def test_partition_tasks_run_from_the_schedule(entry, db):
    """Each scheduled partition task runs as beat would send it (by name, to its queue)."""
    app.loader.import_default_modules()
    task = app.tasks[app.conf.beat_schedule[entry]["task"]]
    assert app.amqp.router.route({}, task.name)["queue"].name == "default"
    result = task.apply().get()
    assert isinstance(result, list)
