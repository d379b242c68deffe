"""``quant.keep_float=K``: keep the K Linears float that harm the model most when quantized.

The ranking is the sensitivity scan of :mod:`compress.pipeline.sensitivity` (one Linear
quantized at a time, everything else float), scored by how far each variant's output
distribution moves from the float model's: the mean KL divergence KL(float || variant) per
item (classification) or token (causal LMs) on ``RANKING_BATCHES`` calibration batches. Never
on the held-out items, whose quality the record then measures: choosing on the test items
would flatter the very recipe it chose. The ranking depends on the pruned model, the task's
data and the level, and costs a forward pass per Linear (less the blocks before the Linear's
own, replayed from the float model's recorded outputs: :mod:`~compress.pipeline.block_replay`),
so it is computed once and cached under ``paths.cache_dir/sensitivity/<key>/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from compress.config.job import Config
from compress.config.quant import Float32Config, QuantConfig
from compress.infra.cache import cached_entry
from compress.infra.context import Batch, CompressionContext, model_inputs
from compress.pipeline.baseline import Baseline
from compress.pipeline.block_replay import BlockReplay
from compress.pipeline.pruned import pruned_model_key
from compress.pipeline.sensitivity import linear_groups, sensitivity
from compress.quantization.selection import is_skipped

log = logging.getLogger(__name__)

RANKING = "ranking.csv"
# Calibration batches the ranking scores on: a ranking costs one pass over them per Linear.
RANKING_BATCHES = 2
# Bump when the way a ranking is computed changes: older cache entries are then not reused.
RANKING_VERSION = 1


def ranking_key(config: Config, baseline: Baseline) -> str:
    """What a ranking depends on: the pruned model (baseline, prune, recovery), the task's
    data, the level's settings (``skip`` and ``keep_float`` aside: they only read it)."""
    level = {k: v for k, v in dataclasses.asdict(config.quant).items()
             if k not in ("skip", "keep_float")}  # fmt: skip
    material = {
        "pruned": pruned_model_key(config, baseline),
        "task": dataclasses.asdict(config.task),
        "quant": level,
        "batches": RANKING_BATCHES,
        "version": RANKING_VERSION,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _log_probs(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Log-probabilities of every item's classes or every token's next token, one row each.
    No key/value cache: a block replayed by :class:`BlockReplay` would not fill its entries."""
    inputs = model_inputs(batch)
    if getattr(model.config, "use_cache", False):
        inputs["use_cache"] = False
    logits = model(**inputs).logits.float()
    return logits.reshape(-1, logits.shape[-1]).log_softmax(-1)


def _mean_kl(
    model: nn.Module, batches: list[Batch], reference: list[torch.Tensor], replay: BlockReplay
) -> float:
    """Mean KL(reference || model) per row over ``batches``."""
    model.eval()
    total, rows = 0.0, 0
    with torch.inference_mode():
        for batch, expected in zip(batches, reference, strict=True):
            replay.next_batch()
            got = _log_probs(model, batch)
            kl = torch.nn.functional.kl_div(got, expected, log_target=True, reduction="sum")
            total += float(kl)
            rows += len(got)
    return total / rows


def rank_linears(model: nn.Module, quant: QuantConfig, context: CompressionContext) -> pd.DataFrame:
    """Every Linear of ``model`` ranked by how far quantizing it alone at ``quant`` moves the
    model's outputs (mean KL divergence from the float model's on calibration batches), most
    harmful first: the scan's table, one Linear per group."""
    batches = list(context.calibration_batches(RANKING_BATCHES, "quant.keep_float"))
    model.eval()
    replay = BlockReplay(model)
    reference = []
    with torch.inference_mode(), replay.recording():
        for batch in batches:
            replay.next_batch()
            reference.append(_log_probs(model, batch))
    plain = dataclasses.replace(quant, skip=[], keep_float=0)
    score = partial(_mean_kl, batches=batches, reference=reference, replay=replay)
    # the float model's KL from its own outputs is 0: no pass needed to score it
    return sensitivity(model, plain, linear_groups(model, "linear"), score, context,
                       before_scoring=replay.replay_into, float_score=0.0)  # fmt: skip


def cached_ranking(
    config: Config, baseline: Baseline, model: nn.Module, context: CompressionContext, cache: Path
) -> pd.DataFrame:
    def build(staging: Path) -> None:
        log.info("ranking the Linears by sensitivity to quant=%s (cached)", config.quant.name)
        rank_linears(model, config.quant, context).to_csv(staging / RANKING)

    folder = cached_entry(cache / "sensitivity", ranking_key(config, baseline), build,
                          "sensitivity ranking")  # fmt: skip
    return pd.read_csv(folder / RANKING, index_col="rank")


@dataclasses.dataclass(frozen=True)
class KeptFloat:
    """The level with ``skip`` extended by the chosen Linears, the chosen names (most harmful
    first) and the notes the record carries."""

    quant: QuantConfig
    names: list[str]
    notes: list[str]


def keep_most_sensitive(
    config: Config, baseline: Baseline, model: nn.Module, context: CompressionContext, cache: Path
) -> KeptFloat:
    """``config.quant`` with its ``keep_float`` most sensitive Linears (those ``skip`` keeps
    float aside) added to ``skip``."""
    quant, wanted = config.quant, config.quant.keep_float
    if wanted == 0:
        return KeptFloat(quant, [], [])
    if isinstance(quant, Float32Config):
        note = f"quant=fp32 keeps every module float: quant.keep_float={wanted} changes nothing"
        return KeptFloat(quant, [], [note])
    ranking = cached_ranking(config, baseline, model, context, cache)
    candidates = [name for name in ranking["group"] if not is_skipped(name, quant.skip)]
    names = candidates[:wanted]
    notes = [
        f"quant.keep_float={wanted} kept the {len(names)} Linears most sensitive to "
        f"quant={quant.name} float (ranked by the KL divergence each one alone quantized adds "
        f"on {RANKING_BATCHES} calibration batches): {', '.join(names)}"
    ]
    if len(names) < wanted:
        notes.append(
            f"quant.keep_float={wanted} asked for more Linears than the {len(candidates)} "
            "that quant.skip leaves: every one of them stays float"
        )
    return KeptFloat(dataclasses.replace(quant, skip=[*quant.skip, *names]), names, notes)
