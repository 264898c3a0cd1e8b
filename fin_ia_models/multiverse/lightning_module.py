"""Lightning wrapper of ``MultiverseModel``: one optimizer step per batch of (context, future targets), AdamW with
warm-up + cosine (``training.schedule``), per-epoch history of the loss terms on logger ``fin_ia.multiverse``.

Resumable (``fin_ia_models.utils.preemption``): the running sums of the current epoch and the history travel in the
checkpoint, the data order depends on (seed, epoch) only, and the noise the losses draw comes from the RNG states
the preemption checkpoint restores (torch for the samples, numpy for torchcfm's OT plan sampling)."""

from __future__ import annotations

import logging

import lightning as L
import torch

from fin_ia_models.multiverse.model import MultiverseModel
from fin_ia_models.training.schedule import adamw_with_schedule

log = logging.getLogger("fin_ia.multiverse")


class MultiverseLightning(L.LightningModule):
    """Trains a ``MultiverseModel``; ``history`` holds one dict per finished epoch."""

    def __init__(self, model: MultiverseModel, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.total_steps = max(1, total_steps)
        self.history: list[dict[str, float]] = []
        self._sums: dict[str, torch.Tensor] = {}
        self._batches = 0

    def on_train_epoch_start(self) -> None:
        self._sums, self._batches = {}, 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        features, targets = batch  # (B, F), (B, H, d)
        losses = self.model.loss(features, targets)
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.detach().float()
        self._batches += 1
        return losses["loss"]

    def on_train_epoch_end(self) -> None:
        if self._batches == 0:
            raise RuntimeError("training epoch ran no batch: fewer contexts than one batch?")
        row = {name: float(total) / self._batches for name, total in self._sums.items()}
        row["epoch"] = float(self.current_epoch)
        row["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        self.history.append(row)
        if self.current_epoch % 10 == 0 or self.current_epoch == self.trainer.max_epochs - 1:
            log.info("epoch %d: %s", int(row["epoch"]),
                     ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch",)))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["multiverse_progress"] = {"history": self.history, "sums": self._sums, "batches": self._batches}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        progress = checkpoint["multiverse_progress"]
        self.history = list(progress["history"])
        self._sums = dict(progress["sums"])
        self._batches = progress["batches"]

    def configure_optimizers(self):
        c = self.model.config
        params = [p for p in self.model.parameters() if p.requires_grad]  # the tokenizer copy stays frozen
        return adamw_with_schedule(params, c.lr, c.weight_decay, self.total_steps, c.schedule)
