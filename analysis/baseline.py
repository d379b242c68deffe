"""What the report says about the baseline. The gate: when a job's baseline learned nothing
measurable (``baseline.learned: false`` in its record, ``compress.measure.gate``), no quality
figure of the sweep is analysed as a finding, and the report opens by saying why and what to
try. The data: held-out texts dropped for occurring in training, and a token length that cuts
many held-out texts (``baseline.data`` in the record)."""

from __future__ import annotations

import pandas as pd

from compress.data.lengths import truncation_note
from compress.measure.gate import headline

LEARNED = "baseline.learned"
GATE = "baseline.gate."
DATA = "baseline.data."


def unlearned(ok: pd.DataFrame) -> str | None:
    """The report's first sentence when any successful job's baseline learned nothing; None
    when every baseline passed its gate, or none was tested."""
    if LEARNED not in ok:
        return None
    failed = ok[ok[LEARNED].eq(False)]
    if failed.empty:
        return None
    row = failed.iloc[0]
    gate = {key.removeprefix(GATE): value for key, value in row.items() if key.startswith(GATE)}
    jobs = "" if len(failed) == len(ok) else f" (in {len(failed)} of {len(ok)} jobs)"
    return f"No quality conclusion can be drawn{jobs}: {headline(gate)}."


SPEED_ONLY = (
    "Size and speed were measured as usual; no recipe is chosen, or called non-inferior, on "
    "quality."
)


def data_lines(ok: pd.DataFrame) -> list[str]:
    """Sentences on the held-out data of the first job: overlap dropped, long texts cut."""
    if ok.empty:
        return []
    row = ok.iloc[0]
    data = {key.removeprefix(DATA): v for key, v in row.items() if key.startswith(DATA)}
    lines = []
    if pd.notna(data.get("eval_overlap")) and data["eval_overlap"]:
        done = "left out" if data.get("eval_overlap_policy") == "drop" else "kept"
        lines.append(
            f"{data['eval_overlap']:.0f} of the {data['eval_distinct']:.0f} distinct held-out "
            f"texts also occur in the training data and were {done} (task.eval_overlap)."
        )
    cut = truncation_note(data)
    return lines + ([f"Note: {cut}."] if cut else [])
