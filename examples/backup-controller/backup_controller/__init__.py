"""An example informerd plugin package: the ``backup`` reconciler and the ``event-log`` handler.

Install it next to informerd (``pip install -e examples/backup-controller``), apply ``crd.yaml``
(``backup_controller.crd()``), and run ``informerd run --config examples/backup-controller/config.yaml``.
"""

from .handlers import event_log
from .names import BACKUPS, FINALIZER, JOBS, crd, job_name, record_name
from .reconciler import BackupOptions, backup, job_finished

__all__ = [
    "BACKUPS",
    "FINALIZER",
    "JOBS",
    "BackupOptions",
    "backup",
    "crd",
    "event_log",
    "job_finished",
    "job_name",
    "record_name",
]
