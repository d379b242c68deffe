"""An ONNX Runtime session that answers like a transformers model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch


class OrtModel:
    """An ONNX Runtime session that answers ``model(**inputs).logits`` like transformers."""

    def __init__(self, path: Path, config, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle workers would otherwise busy-wait after each run and take the cores from what
        # runs next: the caller's own code, a co-located job, the next model of an
        # interleaved measurement (whose latency doubled in our benchmark).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        if "token_type_ids" in self.input_names and "token_type_ids" not in inputs:
            # transformers' default for a single segment, made explicit for the graph
            inputs = {**inputs, "token_type_ids": torch.zeros_like(inputs["input_ids"])}
        feed = {name: inputs[name].numpy() for name in self.input_names}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(None, feed)[0]))

    def eval(self) -> OrtModel:
        return self
