"""Streaming (numpy, batch-1) step inference equals the torch encoder's parallel path and its torch step mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.streaming import StreamingEncoder




@pytest.mark.parametrize("ngroups,exo_on,n_latent", [(1, False, 0), (2, True, 3)])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_streaming_matches_parallel_and_torch_step(ngroups, exo_on, n_latent, backend):
    if backend == "numba":
        pytest.importorskip("numba", reason="numba (optional fast streaming backend) not installed")
    torch.manual_seed(0)
    mixer = Mamba2Config(d_model=32, headdim=8, ngroups=ngroups, d_state=8, chunk_size=8,
                         exo=ExoClockConfig(enabled=exo_on))
    enc = FinJEPA(JEPAConfig(vocab_size=20, n_latent=n_latent, mixer=mixer, n_layers=2, seq_len=64)).context_encoder
    enc.eval()
    with torch.no_grad():  # non-trivial norm weights so that folding them into the projections is exercised
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    length = 23
    tokens = torch.randint(0, 20, (1, length))
    lat = torch.randn(1, length, n_latent) if n_latent else None
    exo = torch.randn(1, length, 2) * 2 if exo_on else None
    with torch.no_grad():
        parallel = enc(tokens, lat, exo)[0].numpy()  # (l, d)
        states = enc.stack.init_state(1)
        stepped = []
        for t in range(length):
            e, states = enc.step(tokens[:, t], states, None if lat is None else lat[:, t],
                                 None if exo is None else exo[:, t])
            stepped.append(e[0].numpy())
    np.testing.assert_allclose(np.stack(stepped), parallel, rtol=1e-4, atol=1e-5)
    stream = StreamingEncoder(enc, backend=backend)
    assert stream.backend == backend
    out = np.stack([
        stream.step(int(tokens[0, t]), None if lat is None else lat[0, t].numpy(),
                    None if exo is None else exo[0, t].numpy())
        for t in range(length)
    ])
    np.testing.assert_allclose(out, parallel, rtol=1e-4, atol=1e-5)
    stream.reset()
    first = stream.step(int(tokens[0, 0]), None if lat is None else lat[0, 0].numpy(),
                        None if exo is None else exo[0, 0].numpy())
    np.testing.assert_allclose(first, parallel[0], rtol=1e-4, atol=1e-5)  # reset really clears both states
