"""IO manager for trained models: one checkpoint file per model asset, written atomically.

Layout ``<root>/<asset_key>.pt``. Each model asset registers how its checkpoint is saved and loaded (the library's
own ``save_*``/``load_*`` functions), so this module knows no model internals. On object stores the checkpoint is
written locally first and uploaded in one PUT.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from upath import UPath

SaveFn = Callable[[Any, Path], Any]
LoadFn = Callable[[Path], Any]
_CODECS: dict[str, tuple[SaveFn, LoadFn]] = {}


def register_model_codec(asset_name: str, save: SaveFn, load: LoadFn) -> None:
    _CODECS[asset_name] = (save, load)


def _codec(context) -> tuple[SaveFn, LoadFn]:
    name = context.asset_key.path[-1]
    if name not in _CODECS:
        raise KeyError(f"no checkpoint codec registered for asset {name!r} (call register_model_codec)")
    return _CODECS[name]


def _is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


class ModelCheckpointIOManager(dg.UPathIOManager):
    extension = ".pt"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        save, _ = _codec(context)
        if _is_local(path):
            save(obj, Path(path.path))  # the library's save is atomic (temp file + os.replace)
            return
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            save(obj, local)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(local.read_bytes())

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        _, load = _codec(context)
        if _is_local(path):
            return load(Path(path.path))
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            local.write_bytes(path.read_bytes())
            return load(local)


class ModelCheckpointIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Stores model checkpoints under ``root`` (local path or s3:// / gs:// URL)."""

    root: str

    def create_io_manager(self, context) -> ModelCheckpointIOManager:
        return ModelCheckpointIOManager(base_path=UPath(self.root))
