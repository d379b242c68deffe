"""What a task is to the rest of the tool, and the registry that builds one from its config."""

from __future__ import annotations

from compress.infra.registry import Registry

build_task = Registry("task")
