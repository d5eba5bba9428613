"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""
import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tokengrid")
app.config_from_object("django.conf:settings", namespace="CELERY")
# `<app>.tasks` of every installed app, and analytics' packages, one tasks module each (their tasks are
# named after their modules; the names they had when one module held them all, analytics.tasks.*, still run for
# one release: core.celery_names).
app.autodiscover_tasks()
app.autodiscover_tasks(["analytics.ingest", "analytics.rankings", "analytics.repricing", "analytics.usage"])


@task_postrun.connect
def _forget_queries(**kwargs) -> None:
    """Drop the SQL that Django keeps under DEBUG after each task: a worker of the demo (DEBUG on)
    otherwise holds up to 9,000 statements, some of them a chunk's tens of thousands of ids."""
    from django.db import reset_queries

    reset_queries()
