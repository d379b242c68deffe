"""The end of a sweep says how it went: one summary on stdout after the last job — jobs ok,
failed and skipped (finished by an earlier run of the same sweep), each failure's reason in a
line, where the records are, and the analysis command to run next.

A Hydra callback (``conf/config.yaml``: ``hydra.callbacks.summarize_sweep``) notes the sweep
when it starts and prints the summary at the sweep's end (:mod:`compress.infra.sweep_end`),
also when a job failed (Hydra then skips its own end-of-sweep callbacks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from compress.infra.sweep_end import at_sweep_end
from compress.record import RECORD_NAME, RecordError, read_record, timestamp


def _label(record: dict, common: set[str]) -> str:
    """The overrides that set this job apart from the sweep's other jobs."""
    own = [o for o in record.get("overrides", []) if o not in common and not o.startswith("hydra.")]
    return " ".join(own) or "-"


def summary(sweep_dir: Path, started_at: str) -> str:
    """The lines that close a sweep into ``sweep_dir`` that started at ``started_at``."""
    ok, skipped, failed, records = 0, 0, [], {}
    folders = sorted((p.parent for p in sweep_dir.glob(f"*/{RECORD_NAME}")), key=_number)
    for folder in folders:
        try:
            records[folder] = read_record(folder / RECORD_NAME)
        except RecordError as error:
            failed.append(f"  {folder.name}: corrupt record ({error})")
    overrides = [set(record.get("overrides", [])) for record in records.values()]
    common = set.intersection(*overrides) if overrides else set()
    for folder, record in records.items():
        if record.get("status") != "ok":
            failed.append(f"  {folder.name} ({_label(record, common)}): {record.get('error')}")
        elif str(record.get("finished_at") or "") < started_at:
            skipped += 1
        else:
            ok += 1
    if not folders:
        return ""  # no job ran (a dry run, or a sweep refused before its first job)
    lines = [f"sweep {sweep_dir}: {len(folders)} jobs: {ok} ok, {len(failed)} failed, "
             f"{skipped} skipped (finished earlier)"]  # fmt: skip
    lines += failed
    lines.append(f"records: {sweep_dir}/<job>/{RECORD_NAME}")
    lines.append(f"next: python -m analysis {sweep_dir}")
    return "\n".join(lines)


def _number(folder: Path) -> tuple[int, str]:
    return (int(folder.name), "") if folder.name.isdigit() else (1 << 30, folder.name)


class SummarizeSweep(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir, started_at = Path(config.hydra.sweep.dir), timestamp()
        at_sweep_end(_print_summary, sweep_dir, started_at)


def _print_summary(sweep_dir: Path, started_at: str) -> None:
    text = summary(sweep_dir, started_at)
    if text:
        print(text, flush=True)
