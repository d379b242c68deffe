"""The data checks a job's config gets before torch is imported: the source exists, the
columns are there and hold text, a classifier has two classes or more and every split rows,
and a model said to be fine-tuned names the data's classes. Data on the hub is checked for
reachability only (loading it is the job's first step)."""

from __future__ import annotations

import json
from pathlib import Path

from compress.config.job import Config
from compress.config.task import (
    ClassificationTaskConfig,
    GenerationTaskConfig,
    LanguageModelingTaskConfig,
)
from compress.data.heads import choose_head
from compress.data.labelled import class_order, labelled_data, split_sizes
from compress.data.tables import SHIPPED_PREFIX, DataError, check_source, load_data
from compress.data.texts import lm_text, prompts_with_references
from compress.infra.registry import Registry
from compress.models.sources import hub_reachable

check_task_data = Registry("task data check")


def _on_the_hub(config: Config) -> bool:
    data = config.task.data
    return not (data.files.train or (data.name and data.name.startswith(SHIPPED_PREFIX)))


@check_task_data.register(ClassificationTaskConfig)
def _classification(task: ClassificationTaskConfig, config: Config, folder: Path | None) -> None:
    loaded = load_data(task.data)
    labels = class_order(loaded, task.data)
    if folder is not None:
        model_config = json.loads((folder / "config.json").read_text())
        labels = choose_head(model_config, labels, config.model.finetuned).labels
    labelled_data(loaded, task.data, split_sizes(task), labels)


@check_task_data.register(LanguageModelingTaskConfig)
def _language_modeling(
    task: LanguageModelingTaskConfig, config: Config, folder: Path | None
) -> None:
    lm_text(task.data)


@check_task_data.register(GenerationTaskConfig)
def _generation(task: GenerationTaskConfig, config: Config, folder: Path | None) -> None:
    prompts = prompts_with_references(task.data)
    if task.num_prompts >= len(prompts):
        raise DataError(
            f"task.num_prompts={task.num_prompts} leaves none of the {len(prompts)} distinct "
            "prompts to calibrate on",
            f"task.num_prompts < {len(prompts)}",
        )


def data_problems(config: Config, folder: Path | None) -> list[str]:
    """One line per problem of the job's data; ``folder`` holds the model's config.json."""
    try:
        check_source(config.task.data)
        if _on_the_hub(config):
            if not hub_reachable():
                raise DataError(
                    f"task.data.name={config.task.data.name} is not shipped data or a local "
                    "file, and the dataset hub is unreachable (offline)",
                    "task.data.files.train=<local file>, or shipped:<name>",
                )
            return []
        check_task_data(config.task, config, folder)
    except DataError as error:
        return [str(error)]
    return []
