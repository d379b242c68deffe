"""``prune_method`` (what pruning removes and how it ranks it) and ``schedule`` (how the target
fraction ``prune`` is reached)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from omegaconf import MISSING

from compress.config.errors import ConfigError, check_positive


@dataclass
class PruneMethodConfig:
    """How weights are chosen and removed; ``prune`` says how many."""

    name: str = MISSING


@dataclass
class NoPruningConfig(PruneMethodConfig):
    """``prune_method=none``: the weights stay as they are, whatever ``prune`` says."""

    name: str = "none"


class Scope(StrEnum):
    blocks = "blocks"
    attention = "attention"
    ffn = "ffn"
    all = "all"


@dataclass
class UnstructuredPruningConfig(PruneMethodConfig):
    """Zero individual weights of the Linear layers in ``scope``: ``blocks`` (every Linear of
    the transformer blocks), ``attention`` or ``ffn`` (their attention or feed-forward part),
    or ``all`` (every Linear, pooler and task head included). Embeddings and LayerNorms are
    never pruned. ``per_layer`` removes the same fraction from every layer; otherwise one
    global ranking over all layers in scope decides, so layers lose different fractions.
    """

    scope: Scope = Scope.blocks
    per_layer: bool = False


@dataclass
class MagnitudePruningConfig(UnstructuredPruningConfig):
    """Remove the weights of smallest absolute value (L1 magnitude)."""


@dataclass
class RandomPruningConfig(UnstructuredPruningConfig):
    """Remove weights at random (seeded): the control arm that magnitude must beat."""

    name: str = "random"

    seed: int = 0


@dataclass
class SemiStructuredPruningConfig(UnstructuredPruningConfig):
    """N:M sparsity: in every group of ``group`` consecutive input weights keep the
    ``group - zeros`` largest. Sparse tensor cores (NVIDIA Ampere and later) run 2:4 at up to
    twice the speed; CPUs have no such kernel, so there it is a storage format only. The
    fraction removed is fixed by the pattern; ``prune`` must equal ``zeros / group``."""

    name: str = "2to4"

    zeros: int = 2
    group: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.zeros < self.group:
            raise ConfigError(
                f"prune_method.zeros={self.zeros} prune_method.group={self.group} is no pattern",
                "0 < zeros < group",
            )


class HeadImportance(StrEnum):
    weight_norm = "weight_norm"
    gradient = "gradient"


@dataclass
class HeadPruningConfig(PruneMethodConfig):
    """Remove whole attention heads, the same number from every layer, physically (the q/k/v
    rows and output-projection columns of a removed head are cut out).

    ``importance``: ``weight_norm`` ranks heads by the L2 norm of their weights;
    ``gradient`` by the expected absolute gradient of the loss with respect to a gate on
    each head over ``calibration_batches`` labelled batches (Michel et al. 2019, "Are Sixteen
    Heads Really Better than One?"), normalised per layer."""

    name: str = "heads"

    importance: HeadImportance = HeadImportance.weight_norm
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        check_positive("prune_method.calibration_batches", self.calibration_batches)


@dataclass
class HeadAndNeuronPruningConfig(HeadPruningConfig):
    """Remove the fraction ``prune`` of the heads and of the feed-forward neurons of every
    block: the whole block gets narrower (heads ranked as in ``HeadPruningConfig``)."""

    name: str = "heads_neurons"


@dataclass
class NeuronPruningConfig(PruneMethodConfig):
    """Remove feed-forward intermediate neurons, the same number from every layer, ranked by
    the L2 norm of their input-projection row; the config's ``intermediate_size`` shrinks."""

    name: str = "neurons"


class DroppedBlocks(StrEnum):
    top = "top"
    bottom = "bottom"


@dataclass
class LayerPruningConfig(PruneMethodConfig):
    """Remove whole transformer blocks. ``drop=top`` removes the last blocks, which costs the
    least quality on downstream tasks (Sajjad et al. 2023, "On the effect of dropping layers
    of pre-trained transformer models"); ``bottom`` removes the first ones."""

    name: str = "layers"

    drop: DroppedBlocks = DroppedBlocks.top


class ScheduleCurve(StrEnum):
    cubic = "cubic"
    linear = "linear"


@dataclass
class ScheduleConfig:
    name: str = MISSING  # how the target fraction ``prune`` is reached


@dataclass
class OneShotScheduleConfig(ScheduleConfig):
    """Prune to the target in one step (then recover, if a recovery method is set)."""

    name: str = "oneshot"


@dataclass
class IterativeScheduleConfig(ScheduleConfig):
    """Reach the target in ``steps`` pruning steps, with ``finetune_steps`` recovery-training
    steps after each but the last. ``cubic`` (Zhu & Gupta 2017) prunes fast first and
    slowly near the target: s_i = s * (1 - (1 - i/k)^3); ``linear``: s_i = s * i/k."""

    name: str = "iterative"
    steps: int = 4
    curve: ScheduleCurve = ScheduleCurve.cubic
    finetune_steps: int = 40

    def __post_init__(self) -> None:
        check_positive("schedule.steps", self.steps)
        check_positive("schedule.finetune_steps", self.finetune_steps)
