"""Which Linears cost the most quality when quantized: quantize one group of them at a time
(the rest kept float with ``quant.skip``), score each variant, and rank the groups by how
much worse than the float model they make it. The top of the table is what ``quant.skip``
should keep float first (mixed precision).

    python -m compress.pipeline.sensitivity model=smollm2 task=lm quant=int8 \\
        task.eval_tokens=1024 prune=0
    python -m compress.pipeline.sensitivity --group-by type model=smollm2 task=lm quant=int4

Any job override composes as for ``compress.main``; the model is pruned (and recovered) as
that job would prune it before it is quantized (``prune=0`` scans the pretrained model). A
group is one Linear (``--group-by linear``), one projection type across all blocks
(``type``: every ``*.mlp.down_proj``), or one block (``block``). Writes ``sensitivity.csv``
and ``sensitivity.md`` into ``--out``, most harmful group first. Levels that calibrate
(int8_static, int8_smoothquant, int4_gptq) calibrate once per variant: GPTQ takes minutes a
variant on SmolLM2, so scan it with ``--group-by type`` or ``block``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
from torch import nn

from compress.backends.torch.quantize import quantize_
from compress.config.quant import QuantConfig
from compress.infra.context import CompressionContext

GROUPINGS = ("linear", "type", "block")
_BLOCK_INDEX = re.compile(r"\.(\d+)\.")


def _quantizable(model: nn.Module) -> list[str]:
    """Modules a level may convert: Linears (GPT-2's Conv1D too) and embedding tables."""
    kinds = ("Linear", "Conv1D", "Embedding")
    return [name for name, m in model.named_modules() if type(m).__name__ in kinds]


def linear_groups(model: nn.Module, by: str = "linear") -> dict[str, list[str]]:
    """The Linears of ``model`` grouped ``by`` one of :data:`GROUPINGS`, by group name."""
    groups: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if type(module).__name__ not in ("Linear", "Conv1D"):
            continue
        match = _BLOCK_INDEX.search(name)
        key = {
            "linear": name,
            "type": _BLOCK_INDEX.sub(".*.", name, count=1),
            "block": name[: match.end() - 1] if match else name,
        }[by]
        groups.setdefault(key, []).append(name)
    return groups


def sensitivity(
    model: nn.Module,
    quant: QuantConfig,
    groups: dict[str, list[str]],
    score: Callable[[nn.Module], float],
    context: CompressionContext,
    higher_is_better: bool = False,
    before_scoring: Callable[[nn.Module], object] | None = None,
    float_score: float | None = None,
) -> pd.DataFrame:
    """Score ``model`` with each group alone quantized by ``quant`` (everything else that the
    level could convert is added to ``quant.skip``); one row per group, ranked by ``harm``
    (how much worse than the float model's score, in the score's units), largest first.
    ``before_scoring`` gets each quantized variant before it is scored; ``float_score`` is
    ``model``'s own score where the caller knows it (else it is scored too)."""
    reference = score(model) if float_score is None else float_score
    candidates = _quantizable(model)
    rows = []
    for group, names in groups.items():
        variant = copy.deepcopy(model)
        others = [n for n in candidates if n not in names]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_(dataclasses.replace(quant, skip=[*quant.skip, *others]), variant, context)
        if before_scoring is not None:
            before_scoring(variant)
        value = score(variant)
        harm = (reference - value) if higher_is_better else (value - reference)
        ratio = value / reference if reference else float("nan")
        params = sum(model.get_submodule(n).weight.numel() for n in names)
        rows.append({
            "group": group, "linears": len(names), "params": params, "score": value,
            "float_score": reference, "harm": harm, "ratio": ratio,
        })  # fmt: skip
    table = pd.DataFrame(rows).sort_values("harm", ascending=False, kind="stable")
    return table.reset_index(drop=True).rename_axis("rank")


def write_table(table: pd.DataFrame, folder: Path, header: str) -> None:
    """``sensitivity.csv`` and ``sensitivity.md`` (the header line, then the table)."""
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "sensitivity.csv")
    markdown = f"{header}\n\n{table.to_markdown(floatfmt='.4g')}\n"
    (folder / "sensitivity.md").write_text(markdown)


def _task_score(task, tokenizer, metric: str, model: nn.Module) -> float:
    """The task's headline quality metric of ``model`` on its held-out data."""
    return task.evaluate(model.eval(), tokenizer)[0][metric]


def _scan(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """Compose the job, prune as it would, and scan its quantization level."""
    from omegaconf import OmegaConf

    from compress.config.refusal import refuse
    from compress.pipeline.preflight import config_problems
    from compress.pipeline.prepare import compose_config, prepare

    composed = compose_config(args.overrides)
    problems = config_problems(composed) or _backend_problems(composed)
    if problems:
        refuse(problems)
    prepared = prepare(OmegaConf.to_object(composed))
    config, task = prepared.config, prepared.task
    model, _, _ = prepared.pruned_model()
    metric = type(config.task).QUALITY_METRICS[0]
    score = partial(_task_score, task, prepared.tokenizer, metric.name)
    groups = linear_groups(model, args.group_by)
    table = sensitivity(
        model, config.quant, groups, score, prepared.context, metric.higher_is_better
    )
    header = (
        f"quant={config.quant.name} one group ({args.group_by}) at a time on "
        f"model={config.model.name} prune={config.prune} prune_method="
        f"{config.prune_method.name}; score: {metric.name} on task={config.task.name}; harm: "
        f"how much worse than the float model ({'higher' if metric.higher_is_better else 'lower'}"
        " is better)"
    )
    return table, header


def _backend_problems(composed) -> list[str]:
    """The scan keeps modules float with ``quant.skip``, which only the torch backend's levels
    honour: any other ``backend=`` is refused rather than silently scanned on torch."""
    if composed.backend.name == "torch":
        return []
    return [
        f"backend={composed.backend.name}: the sensitivity scan quantizes one group at a time "
        "with quant.skip, which only the torch backend honours, accepted: backend=torch"
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-by", choices=GROUPINGS, default="linear")
    parser.add_argument("--out", type=Path, default=Path("sensitivity"))
    parser.add_argument("overrides", nargs="*", help="job overrides, e.g. model=smollm2")
    args = parser.parse_args(argv)
    from compress.config.refusal import one_line_errors
    from compress.infra.quiet import quiet_libraries

    quiet_libraries()
    with one_line_errors():  # a refused config or a failed scan: one line, as compress.main
        table, header = _scan(args)
    write_table(table, args.out, header)
    print(f"{header}\n\n{table.head(20).to_markdown(floatfmt='.4g')}", file=sys.stdout)


if __name__ == "__main__":
    main()
