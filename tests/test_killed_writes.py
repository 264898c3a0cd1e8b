"""Temporaries of writes killed with SIGKILL are cleaned up by age (#16: 17 of 30 kills left one behind).

A real writer process is killed in the middle of an ``atomic_write``; the target is never torn (old file or none),
the temporary stays, and the next write into the same folder deletes it once it is older than ``STALE_AFTER_S``
(a younger one may be a write in progress in another process, so it is kept)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fin_ia_models.data.storage import read_candles_parquet, write_candles_parquet
from fin_ia_models.utils.atomic import STALE_AFTER_S, atomic_write_bytes
from fin_ia_models.utils.preemption import CHECKPOINT_NAME
from tests.test_data_integrity import DAY, day_frame

REPO = Path(__file__).resolve().parents[1]
# writes 64 KiB blocks to the temporary forever: killed mid-write by the test
SLOW_WRITER = """
import sys, time
from fin_ia_models.utils.atomic import atomic_write

def write(handle):
    while True:
        handle.write(b"x" * 65536)
        handle.flush()
        time.sleep(0.01)

atomic_write(sys.argv[1], write)
"""


def kill_mid_write(target: Path) -> Path:
    """Start a writer of ``target``, SIGKILL it once its temporary holds data; return the temporary left behind."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], env=env)
    deadline = time.monotonic() + 60
    while not [p for p in target.parent.glob(f".{target.name}.*.tmp") if p.stat().st_size > 0]:
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    (left,) = target.parent.glob(f".{target.name}.*.tmp")
    return left


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_candle_write_leaves_the_old_partition_and_its_temporary_is_cleaned_by_age(tmp_path):
    folder = tmp_path / "BTCUSDT" / "1h"
    target = folder / f"{DAY}.parquet"
    write_candles_parquet(day_frame(), target, day=DAY)
    before = target.read_bytes()
    left = kill_mid_write(target)
    assert target.read_bytes() == before  # the killed write never touched the partition
    read_candles_parquet(target, "BTC/USDT", "1h", DAY)

    write_candles_parquet(day_frame(), folder / "2024-01-02.parquet.bak", day=DAY)  # a write soon after: kept
    assert left.exists()
    age(left, STALE_AFTER_S + 60)
    write_candles_parquet(day_frame(), target, day=DAY)  # the next write after an hour: gone
    assert not left.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([target.name, "2024-01-02.parquet.bak"])


@pytest.mark.parametrize("name", ["tokenizer_model.safetensors", CHECKPOINT_NAME])
def test_killed_model_and_checkpoint_writes_are_cleaned_by_the_next_write_in_the_folder(tmp_path, name):
    target = tmp_path / name
    left = kill_mid_write(target)
    assert not target.exists()  # no torn file under the final name
    age(left, STALE_AFTER_S + 60)
    atomic_write_bytes(tmp_path / f"{CHECKPOINT_NAME}.sha256", b"0" * 64)  # any later write in the folder
    assert not left.exists()
