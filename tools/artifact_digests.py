"""Digests of every learned artifact of a tiny pipeline run (model weights, tokens, embeddings), for refactors that
must not change behaviour: run it on the commit before and after and compare.

    DAGSTER_HOME=$(mktemp -d) OMP_NUM_THREADS=1 PYTHONPATH=<checkout> .venv/bin/python tools/artifact_digests.py <checkout>

It materializes the same tiny chain the tests use (tests/test_pipeline_models.py: synthetic market seed 3, 2 tokenizer
epochs, 8 JEPA steps) in a temporary home and prints one SHA-256 prefix per artifact (state dicts in key order, frames
column by column). One torch thread: CPU results are bit-reproducible only at a fixed thread count.
"""
import hashlib
import json
import sys
import tempfile

import dagster as dg
import numpy as np
import torch

sys.path.insert(0, sys.argv[1] + "/tests")
torch.set_num_threads(1)
from test_pipeline_models import (JEPA_RUN, SPLIT, SYMBOLS, TOKENIZER_RUN, load, store_candles,  # noqa: E402
                                  window_days)

from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig  # noqa: E402
from fin_ia_pipeline.definitions import build_definitions  # noqa: E402
from fin_ia_pipeline.settings import PipelineSettings  # noqa: E402


def sd_digest(model) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def frame_digest(frame) -> str:
    h = hashlib.sha256()
    for column in frame.columns:
        h.update(column.encode())
        h.update(np.ascontiguousarray(frame[column].to_numpy()).tobytes())
    return h.hexdigest()[:16]


tmp = tempfile.mkdtemp()
settings = PipelineSettings(home=tmp, symbols=SYMBOLS, split=SPLIT, start_date="2023-12-01")
store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=3)), window_days())
defs = build_definitions(settings)
out = {}
with dg.instance_for_test() as instance:
    def mat(name, partition=None, run_config=None):
        return dg.materialize(list(defs.assets), selection=[name], partition_key=partition,
                              resources=defs.resources, instance=instance, run_config=run_config or {})
    mat("tokenizer_model", run_config=TOKENIZER_RUN)
    for symbol in SYMBOLS:
        mat("token_sequences", symbol)
    mat("jepa_encoder", run_config=JEPA_RUN)
    for symbol in SYMBOLS:
        mat("jepa_embeddings", symbol)
    out["tokenizer"] = sd_digest(load(defs, instance, "tokenizer_model"))
    out["jepa"] = sd_digest(load(defs, instance, "jepa_encoder"))
    for s in SYMBOLS:
        out[f"tokens {s}"] = frame_digest(load(defs, instance, "token_sequences", s))
        out[f"embeddings {s}"] = frame_digest(load(defs, instance, "jepa_embeddings", s))
print(json.dumps(out, indent=1))
