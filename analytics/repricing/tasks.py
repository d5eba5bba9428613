"""The reprice apply as a Celery task: at a router's size it runs for minutes (`bench/reprice.py
--database tokengrid_10m`: the busiest endpoint's month took 140 s), longer than a web request may take."""
from core.celery_names import shared_task_renamed

from . import services


@shared_task_renamed(old_name="analytics.tasks.report_reprice_apply", ignore_result=True)
def reprice_apply_task(reprice_id: int, actor: str) -> None:
    """Apply a planned reprice (`services.reprice_apply`: once; an interrupted one resumes; again, nothing)."""
    services.reprice_apply(reprice_id=reprice_id, actor=actor)
