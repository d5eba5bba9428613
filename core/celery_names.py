"""Celery task names that follow their modules, with the names they had before kept for one release."""
from celery import shared_task


def shared_task_renamed(*, old_name: str, **options):
    """`shared_task` under the task's own name (`<module>.<function>`, Celery's default) and, for one release,
    under `old_name` too, with the same options: a message queued (or retried) under the old name before a
    deploy still runs. Drop `old_name` a release later, when no queue can hold such a message any more."""
    def decorate(fun):
        shared_task(name=old_name, **options)(fun)
        return shared_task(**options)(fun)
    return decorate
