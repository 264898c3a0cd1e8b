"""The flow's ODE integration against closed forms: the OT displacement between two Gaussians is a straight path with
a known velocity field, so Euler with 1-2 steps must agree with dopri5 and with the exact map; a rotation field is
curved, so there the few-step solvers must NOT agree and the straightness measure must see it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fin_ia_models.multiverse.flow import integrate, straightness

MU, SIGMA = torch.tensor([1.5, -0.5, 0.25]), torch.tensor([0.5, 2.0, 1.0])


def gaussian_ot_field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Velocity of the OT interpolation N(0, I) → N(MU, diag(SIGMA²)): x_t = (1 − t)·x0 + t·(MU + SIGMA·x0), so
    x0 = (x − t·MU) / (1 − t + t·SIGMA) and v = MU + (SIGMA − 1)·x0 (straight paths, constant speed)."""
    x0 = (x - t * MU) / (1 - t + t * SIGMA)
    return MU + (SIGMA - 1) * x0


def rotation_field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dx/dt = (−π/2)·J x: a quarter turn over t ∈ [0, 1]; circular, not straight."""
    return math.pi / 2 * torch.stack([-x[:, 1], x[:, 0]], dim=1)


def test_few_euler_steps_are_exact_on_a_straight_flow():
    x0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = MU + SIGMA * x0
    for steps in (1, 2):
        x1, nfe = integrate(gaussian_ot_field, x0, "euler", steps)
        torch.testing.assert_close(x1, exact.to(x1.dtype), rtol=1e-12, atol=1e-12)
        assert nfe == steps
    x1, nfe = integrate(gaussian_ot_field, x0, "dopri5", rtol=1e-5)
    torch.testing.assert_close(x1, exact, rtol=1e-5, atol=1e-5)
    assert nfe > 2  # the adaptive solver pays for its accuracy
    s = straightness(gaussian_ot_field, x0)
    assert s["S"] < 1e-20 and s["S_relative"] < 1e-20


def test_a_curved_flow_needs_more_steps_and_is_measured_as_curved():
    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    exact = torch.tensor([[0.0, 1.0], [-2.0, 0.0]], dtype=torch.float64)  # the quarter turn
    accurate, _ = integrate(rotation_field, x0, "dopri5", rtol=1e-8)
    torch.testing.assert_close(accurate, exact, rtol=1e-6, atol=1e-6)
    errors = [float((integrate(rotation_field, x0, "euler", steps)[0] - exact).abs().max()) for steps in (1, 2, 8)]
    assert errors[0] > errors[1] > errors[2] > 1e-2  # Euler converges slowly on a circle
    s = straightness(rotation_field, x0)
    # a quarter circle: |v| = π/2·r and the chord is √2·r, so S_relative = (π²/4 − 2)/2 ≈ 0.234 (fine Euler grid)
    assert s["S_relative"] == pytest.approx((math.pi**2 / 4 - 2) / 2, rel=0.1)


def test_integrate_refuses_zero_steps():
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        integrate(rotation_field, torch.zeros(1, 2), "euler", 0)


@pytest.mark.parametrize("coupling", ["ot", "ot_conditional", "independent"])
def test_every_coupling_keeps_each_target_with_its_condition(coupling):
    """x1 = x_t + (1 − t)·u_t must be the target row whose condition came back with the pair; OT pairs are shorter."""
    from fin_ia_models.multiverse.config import MultiverseConfig
    from fin_ia_models.multiverse.flow import FlowPredictor

    torch.manual_seed(0)
    np.random.seed(0)  # torchcfm draws the pairs from the OT plan with numpy's global generator
    predictor = FlowPredictor(MultiverseConfig(coupling=coupling, emb_dim=4))
    x1 = torch.randn(64, 18) * 3 + 1
    x0 = torch.randn(64, 18)
    states = torch.arange(64, dtype=torch.float32)[:, None].repeat(1, 8)  # row i's condition is i
    t, xt, ut, paired = predictor.couple(x0, x1, states)
    rows = paired[:, 0].long()
    torch.testing.assert_close(xt + (1 - t)[:, None] * ut, x1[rows], rtol=1e-5, atol=1e-5)
    length = float((ut**2).sum(dim=1).mean())
    independent = float(((x1 - x0) ** 2).sum(dim=1).mean())
    if coupling == "ot":
        assert length < 0.8 * independent  # the minibatch OT plan shortens the pairs
