"""Tasks: what a model is trained, evaluated and timed on. ``build_task(config)`` returns the
task object registered for the config's dataclass."""

from compress.tasks import classification, generation, language_modeling  # noqa: F401
from compress.tasks.base import build_task

__all__ = ["build_task"]
