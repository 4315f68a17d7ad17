"""controllers: workqueues, worker pools and UID-keyed reconcilers on top of ``informers``."""

__all__: list[str] = []
