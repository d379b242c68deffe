"""Tasks: what a model is trained, evaluated and timed on. ``build_task(config)`` returns the
task object registered for the config's dataclass."""

from compress.registry import Registry

build_task = Registry("task")

from compress.tasks import (  # noqa: E402,F401  (each registers its handler)
    classification,
    generation,
    language_modeling,
)
