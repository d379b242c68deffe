"""The causal-LM tasks on the user's own files: perplexity of a text file, generation on a
prompt/answer CSV."""

from __future__ import annotations

import pandas as pd

from compress.pipeline.job import run_job
from tests.compress.pipeline.test_lm_job import FAST

SENTENCES = [
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "Rain fell across the valley, and the river rose above its banks by evening.",
    "She opened the old book and found a letter written by her grandmother.",
    "The engine sputtered twice before it caught and the car rolled forward.",
] * 6


def test_perplexity_of_a_text_file(compose_config, gate_passes, tiny_llama_dir, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("\n".join(SENTENCES))
    cfg = compose_config([f"model.name_or_path={tiny_llama_dir}", *FAST, "task=lm",
                          f"task.data.files.train={text}", "task.eval_tokens=0",
                          "task.window=32", "task.stride=16", "quant=int8"])  # fmt: skip
    record = run_job(cfg)
    quality = record["compressed"]["quality"]
    assert record["status"] == "ok" and quality["corpus"] == str(text)
    assert quality["tokens"] > 50 and quality["perplexity"] > 1
    # independent units are blocks of windows: fewer than 2 x 2048 tokens still make 2
    assert record["ratios"]["intervals"]["perplexity"]["n"] == 2 < quality["windows"]


def test_generation_on_prompt_and_answer_columns(compose_config, tiny_llama_dir, tmp_path):
    qa = tmp_path / "qa.csv"
    pd.DataFrame({"question": [s.split(",")[0] + "?" for s in SENTENCES[:8]],
                  "answer": SENTENCES[:8]}).to_csv(qa, index=False)  # fmt: skip
    cfg = compose_config([f"model.name_or_path={tiny_llama_dir}", *FAST, "task=generation",
                          f"task.data.files.train={qa}", "task.data.text_column=question",
                          "task.data.reference_column=answer", "task.num_prompts=2",
                          "task.max_new_tokens=4", "task.eval_batch_size=2"])  # fmt: skip
    record = run_job(cfg)
    quality = record["compressed"]["quality"]
    assert record["status"] == "ok" and quality["n"] == 2
    assert 0 <= quality["bleu"] <= 100 and 0 <= quality["rougeL"] <= 1
