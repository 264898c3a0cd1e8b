"""Lightning wrapper of ``TokenizerModel``: one optimizer step per batch of patches, AdamW with warm-up + cosine,
per-epoch history (mean losses, dead codes revived) logged through python logging (logger ``fin_ia.tokenizer``).

The history and the running sums of the current epoch travel in Lightning checkpoints, so a run resumed mid-epoch
(``fin_ia_models.utils.preemption``) reports the same history as an uninterrupted one. The codebook, its EMA
statistics, dead-code counters and revival ring buffer are buffers of the model: the state_dict carries them."""

from __future__ import annotations

import logging

import lightning as L
import torch

from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.training.schedule import adamw_with_schedule

log = logging.getLogger("fin_ia.tokenizer")


class TokenizerLightning(L.LightningModule):
    """Trains a ``TokenizerModel``; ``history`` holds one dict per finished epoch."""

    def __init__(self, model: TokenizerModel, total_steps: int, compile_model: bool = False) -> None:
        super().__init__()
        self.model = model
        self.total_steps = max(1, total_steps)
        self.history: list[dict[str, float]] = []
        self._sums: dict[str, torch.Tensor] = {}
        self._batches = 0
        self._revived_at_start = 0
        # compiled view shares the parameters; kept off the module tree so state_dict keys stay plain
        object.__setattr__(self, "_forward", torch.compile(model) if compile_model else model)

    def _revived_total(self) -> int:
        counter = getattr(self.model.quantizer, "revived_total", None)
        return int(counter) if counter is not None else 0  # FSQ has no codebook to revive

    def on_train_epoch_start(self) -> None:
        self._sums, self._batches = {}, 0
        self._revived_at_start = self._revived_total()

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x,) = batch  # (B, L, C)
        out = self._forward(x)
        losses = self.model.loss(out)
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.detach().float()
        self._batches += 1
        return losses["loss"]

    def on_train_epoch_end(self) -> None:
        if self._batches == 0:
            raise RuntimeError("training epoch ran no batch: fewer patches than needed for one batch?")
        row = {name: float(total) / self._batches for name, total in self._sums.items()}
        row["epoch"] = float(self.current_epoch)
        row["revived"] = float(self._revived_total() - self._revived_at_start)
        row["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        self.history.append(row)
        log.info(
            "epoch %d: loss %.4f (huber %.4f, sdtw %.4f, commit %.4f), revived %d codes, lr %.2e",
            int(row["epoch"]), row["loss"], row["huber"], row["sdtw"], row["commit"], int(row["revived"]), row["lr"],
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the epoch's running sums: a resume in the middle of an epoch must still produce that epoch's full row
        checkpoint["tokenizer_progress"] = {"history": self.history, "sums": self._sums, "batches": self._batches,
                                            "revived_at_start": self._revived_at_start}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        progress = checkpoint["tokenizer_progress"]
        self.history = list(progress["history"])
        self._sums = dict(progress["sums"])
        self._batches = progress["batches"]
        self._revived_at_start = progress["revived_at_start"]

    def configure_optimizers(self):
        c = self.model.config
        return adamw_with_schedule(self.model.parameters(), c.lr, c.weight_decay, self.total_steps, c.schedule)
