"""How a config value outside what the tool accepts is reported: one line, what is wrong and
what is accepted."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value outside what the tool accepts. The message is one line: what is wrong,
    then what is accepted (``<problem>, accepted: <accepted>``)."""

    def __init__(self, problem: str, accepted: str) -> None:
        super().__init__(f"{problem}, accepted: {accepted}")


def check_fraction(key: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}={value} is outside [0, 1)", "the fraction to remove, e.g. 0.5")


def check_positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key}={value} is not a positive integer", "1, 2, 3, ...")
