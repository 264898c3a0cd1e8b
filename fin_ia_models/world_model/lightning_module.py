"""Lightning wrapper of Fin-JEPA: AdamW with warm-up + cosine decay (``training.schedule``), EMA target update on the I-JEPA momentum
schedule after every optimizer step, deterministic masks (seeded per step), progress on logger "fin_ia.world_model".

Resumable (``fin_ia_models.utils.preemption``): the EMA target encoder is part of the state_dict, masks depend on
(seed, global_step) only, and the per-step history travels in the checkpoint.
"""

from __future__ import annotations

import logging

import lightning as L
import torch

from fin_ia_models.training.schedule import adamw_with_schedule
from fin_ia_models.world_model.collapse import collapse_stats
from fin_ia_models.world_model.config import JEPAConfig
from fin_ia_models.world_model.jepa import FinJEPA, ema_momentum
from fin_ia_models.world_model.masking import sample_block_mask

log = logging.getLogger("fin_ia.world_model")


class JEPALightning(L.LightningModule):
    def __init__(self, config: JEPAConfig, seed: int, log_every: int = 50) -> None:
        super().__init__()
        self.config = config
        self.model = FinJEPA(config)
        self.seed = seed
        self.log_every = log_every
        self.history: list[dict[str, float]] = []  # per step: loss terms, momentum, collapse stats every log_every

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        tokens = batch["tokens"]  # (b, l)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.global_step)
        mask = sample_block_mask(tokens.shape[0], tokens.shape[1], self.config.masking, gen).to(tokens.device)
        out = self.model.loss(tokens, mask, batch.get("latents"), batch.get("exo"))
        row = {k: float(v.detach()) for k, v in out.items() if k != "ctx_embeddings"}
        row["step"] = float(self.global_step)
        if self.global_step % self.log_every == 0 or self.global_step == self.config.max_steps - 1:
            row.update({f"collapse_{k}": v for k, v in collapse_stats(out["ctx_embeddings"]).as_dict().items()})
            log.info("step %d loss %.4f jepa %.4f eff_rank %.1f std_min %.3f", self.global_step, row["loss"],
                     row["jepa"], row["collapse_effective_rank"], row["collapse_std_min"])
        self.history.append(row)
        return out["loss"]

    def optimizer_step(self, *args, **kwargs) -> None:
        # The EMA update belongs to the optimizer step (not ``on_train_batch_end``): checkpoint callbacks run their
        # ``on_train_batch_end`` before the module's, so a checkpoint written there would miss this step's update.
        super().optimizer_step(*args, **kwargs)
        step = self.global_step + 1  # Lightning counts this step only after the hook returns
        m = ema_momentum(step, self.config.max_steps, self.config.ema_start, self.config.ema_end)
        self.model.ema_update(m)
        if self.history:
            self.history[-1]["ema_momentum"] = m

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["jepa_history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint["jepa_history"])

    def configure_optimizers(self):
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        return adamw_with_schedule(params, cfg.lr, cfg.weight_decay, cfg.max_steps, cfg.schedule)
