"""Distributional forecast baselines that sample H-step paths of hourly log returns, scored on the same targets as the
multiverse (``forecast_targets.path_targets``: ret = Σ path, rv = sqrt(Σ path²)).

- ``BlockBootstrapBaseline``: circular block bootstrap of the training-window returns (Politis & Romano 1992, "A
  circular block-resampling procedure for stationary data"): blocks of ``block_length`` consecutive training returns,
  started uniformly at random, wrapped around the end. Unconditional: the forecast does not depend on the origin.
- ``GarchTBaseline``: GARCH(1,1) (Bollerslev 1986) with standardised Student-t innovations (Bollerslev 1987) and a
  constant mean, fitted ONCE on the training window by maximum likelihood with the ``arch`` package, then filtered
  forward causally with the fitted parameters (no refit) and simulated H steps ahead.
- ``RandomWalkBaseline``: driftless Gaussian random walk with the training-window hourly volatility.

Interface: ``fit(train_returns)``, then ``sample_paths(history, horizon, n_samples, rng) -> (n_samples, horizon)`` for
one origin, or ``sample_paths_batch(returns, origins, horizon, n_samples, rng) -> (n, n_samples, horizon)`` for many
origins at once: the forecast at origin i uses ``returns[: origins[i] + 1]`` only (returns = ``log_returns`` of the
candles, NaN after gaps). All random draws are made before any data-dependent step, so the same rng gives the same
draws whatever the data: perturbing returns after an origin cannot change its forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fin_ia_models.evaluation.forecast_scores import (crps_ensemble, energy_score, interval_coverage, pit_uniformity,
                                                      pit_values)
from fin_ia_models.evaluation.forecast_targets import path_targets
from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class ForecastBaselineConfig(ConfigDict):
    """Settings of the three baselines."""

    block_length: int = 24  # bootstrap block (hours): one day keeps intraday seasonality and short vol clustering
    min_train_returns: int = 500  # fewer finite training returns than this cannot pin down a GARCH-t fit

    def __post_init__(self) -> None:
        if self.block_length < 1:
            raise ValueError(f"block_length must be >= 1, got {self.block_length}")
        if self.min_train_returns < 10:
            raise ValueError(f"min_train_returns must be >= 10, got {self.min_train_returns}")


def _finite_train(train_returns: np.ndarray, minimum: int) -> np.ndarray:
    r = np.asarray(train_returns, np.float64)
    if r.ndim != 1:
        raise ValueError(f"train_returns must be 1-D, got shape {r.shape}")
    r = r[np.isfinite(r)]  # NaN marks returns across gaps: not observations
    if len(r) < minimum:
        raise ValueError(f"need at least {minimum} finite training returns, got {len(r)}")
    return r


def _check_batch(returns: np.ndarray, origins: np.ndarray, horizon: int, n_samples: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    returns = np.asarray(returns, np.float64)
    origins = np.asarray(origins, np.int64)
    if returns.ndim != 1 or origins.ndim != 1:
        raise ValueError(f"returns and origins must be 1-D, got {returns.shape} and {origins.shape}")
    if len(origins) and (origins.min() < 0 or origins.max() >= len(returns)):
        raise ValueError(f"origins must index returns (0..{len(returns) - 1}), got range "
                         f"[{origins.min()}, {origins.max()}]")
    if np.isinf(returns).any():
        raise ValueError("returns contain inf")
    return returns, origins


class _Baseline:
    name = "baseline"

    def __init__(self, config: ForecastBaselineConfig | None = None) -> None:
        self.config = config or ForecastBaselineConfig()
        self.fitted = False

    def _require_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit(train_returns) before sampling")

    def sample_paths(self, history: np.ndarray, horizon: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """(n_samples, horizon) paths from one origin: the last element of ``history`` (returns up to t)."""
        history = np.asarray(history, np.float64)
        if history.ndim != 1 or len(history) == 0:
            raise ValueError(f"history must be a non-empty 1-D array, got shape {history.shape}")
        return self.sample_paths_batch(history, np.array([len(history) - 1]), horizon, n_samples, rng)[0]


class BlockBootstrapBaseline(_Baseline):
    name = "block_bootstrap"

    def fit(self, train_returns: np.ndarray) -> "BlockBootstrapBaseline":
        self.train_ = _finite_train(train_returns, self.config.block_length)  # (N,)
        self.fitted = True
        return self

    def sample_paths_batch(self, returns, origins, horizon, n_samples, rng) -> np.ndarray:
        self._require_fit()
        _, origins = _check_batch(returns, origins, horizon, n_samples)
        length, n_train = self.config.block_length, len(self.train_)
        n_blocks = -(-horizon // length)
        starts = rng.integers(0, n_train, size=(len(origins), n_samples, n_blocks))  # (n, m, B)
        idx = (starts[..., None] + np.arange(length)) % n_train  # (n, m, B, L), circular
        return self.train_[idx.reshape(len(origins), n_samples, n_blocks * length)[..., :horizon]]  # (n, m, H)


class RandomWalkBaseline(_Baseline):
    name = "random_walk"

    def fit(self, train_returns: np.ndarray) -> "RandomWalkBaseline":
        self.sigma_ = float(np.std(_finite_train(train_returns, 2), ddof=1))
        if self.sigma_ <= 0:
            raise ValueError("training returns are constant: random-walk volatility would be 0")
        self.fitted = True
        return self

    def sample_paths_batch(self, returns, origins, horizon, n_samples, rng) -> np.ndarray:
        self._require_fit()
        _, origins = _check_batch(returns, origins, horizon, n_samples)
        return self.sigma_ * rng.standard_normal((len(origins), n_samples, horizon))  # (n, m, H)


class GarchTBaseline(_Baseline):
    """GARCH(1,1)-t: r_t = μ + ε_t, ε_t = σ_t z_t, z_t ~ standardised t(ν), σ²_t = ω + α ε²_{t-1} + β σ²_{t-1}."""

    name = "garch_t"

    def fit(self, train_returns: np.ndarray) -> "GarchTBaseline":
        from arch import arch_model

        r = _finite_train(train_returns, self.config.min_train_returns)
        # arch's optimiser wants unit-scale data; fit on r / s and map the parameters back (μ·s, ω·s²)
        scale = float(np.std(r))
        if scale <= 0:
            raise ValueError("training returns are constant: GARCH cannot be fitted")
        model = arch_model(r / scale, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
        result = model.fit(disp="off")
        if result.convergence_flag != 0:
            raise RuntimeError(f"GARCH(1,1)-t fit did not converge (flag {result.convergence_flag}): "
                               f"{result.optimization_result.message}")
        p = result.params
        self.mu_, self.omega_ = float(p["mu"]) * scale, float(p["omega"]) * scale**2
        self.alpha_, self.beta_, self.nu_ = float(p["alpha[1]"]), float(p["beta[1]"]), float(p["nu"])
        # arch's starting variance (exponentially weighted mean of early squared residuals), in return units
        self.backcast_ = float(model.volatility.backcast(np.asarray(result.resid))) * scale**2
        self.fitted = True
        return self

    @property
    def params(self) -> dict[str, float]:
        self._require_fit()
        return {"mu": self.mu_, "omega": self.omega_, "alpha": self.alpha_, "beta": self.beta_, "nu": self.nu_}

    def filter_variance(self, returns: np.ndarray, initial_variance: float | None = None) -> np.ndarray:
        """(T + 1,) conditional variances: element k is σ²_k = Var(r_k | r_<k) and the last one forecasts the next
        return. A NaN return (gap) contributes its expectation σ²_k in place of ε²_k. Causal by construction."""
        self._require_fit()
        returns = np.asarray(returns, np.float64)
        omega, alpha, beta, mu = self.omega_, self.alpha_, self.beta_, self.mu_
        start = self.backcast_ if initial_variance is None else float(initial_variance)
        out = np.empty(len(returns) + 1)
        var = omega + (alpha + beta) * start  # arch's convention: σ²_0 from the backcast
        for k, r in enumerate(returns.tolist()):  # a plain loop: the recursion is sequential, ~40 ns a step
            out[k] = var
            shock2 = var if r != r else (r - mu) ** 2  # r != r: NaN
            var = omega + alpha * shock2 + beta * var
        out[-1] = var
        return out

    def sample_paths_batch(self, returns, origins, horizon, n_samples, rng) -> np.ndarray:
        self._require_fit()
        returns, origins = _check_batch(returns, origins, horizon, n_samples)
        nu = self.nu_
        # every draw is made before the data are touched: same rng → same draws, whatever the returns
        z = rng.standard_t(nu, size=(horizon, len(origins), n_samples)) * np.sqrt((nu - 2.0) / nu)  # (H, n, m)
        var = np.broadcast_to(self.filter_variance(returns)[origins + 1][:, None],
                              (len(origins), n_samples)).copy()  # (n, m) σ²_{t+1}: uses r_≤t only
        paths = np.empty((len(origins), n_samples, horizon))
        for h in range(horizon):
            shock = np.sqrt(var) * z[h]  # (n, m)
            paths[:, :, h] = self.mu_ + shock
            var = self.omega_ + self.alpha_ * shock**2 + self.beta_ * var
        return paths


def make_baselines(config: ForecastBaselineConfig | None = None) -> list[_Baseline]:
    """The three baselines (unfitted), in report order."""
    return [BlockBootstrapBaseline(config), GarchTBaseline(config), RandomWalkBaseline(config)]


def score_forecasts(paths: np.ndarray, realized: np.ndarray, rng: np.random.Generator,
                    levels: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float | np.ndarray]:
    """Scores of sampled paths (n, m, H) against realized paths (n, H) (rows of NaN = incomplete targets, dropped).

    Returns means over the scored origins: ``crps_ret``, ``crps_rv`` (standard) and their ``_fair`` variants,
    ``energy`` (joint H-step path), ``coverage_{ret,rv}_{50,90}``, PIT chi²/KS p-values, the counts ``n_scored`` and
    ``n_dropped``, and the PIT arrays ``pit_ret``/``pit_rv`` (for histograms)."""
    paths = np.asarray(paths, np.float64)
    realized = np.asarray(realized, np.float64)
    if paths.ndim != 3 or realized.shape != (paths.shape[0], paths.shape[2]):
        raise ValueError(f"paths (n, m, H) and realized (n, H) do not match: {paths.shape} vs {realized.shape}")
    keep = np.isfinite(realized).all(axis=1)
    if not keep.any():
        raise ValueError(f"no complete realized path among {len(realized)} origins: nothing to score")
    paths, realized = paths[keep], realized[keep]
    ret_f, rv_f = path_targets(paths)  # (n, m) each
    ret_y, rv_y = path_targets(realized)  # (n,) each
    out: dict[str, float | np.ndarray] = {"n_scored": float(keep.sum()), "n_dropped": float((~keep).sum()),
                                          "energy": float(energy_score(paths, realized).mean())}
    for name, forecast, outcome in (("ret", ret_f, ret_y), ("rv", rv_f, rv_y)):
        out[f"crps_{name}"] = float(crps_ensemble(forecast, outcome).mean())
        out[f"crps_{name}_fair"] = float(crps_ensemble(forecast, outcome, fair=True).mean())
        for level, value in interval_coverage(forecast, outcome, levels).items():
            out[f"coverage_{name}_{round(level * 100)}"] = value
        pit = pit_values(forecast, outcome, rng)
        uniformity = pit_uniformity(pit)
        out[f"pit_{name}"] = pit
        out[f"pit_{name}_chi2_pvalue"] = uniformity.chi2_pvalue
        out[f"pit_{name}_ks_pvalue"] = uniformity.ks_pvalue
    return out
