"""``fin-ia validate``: every bad input gets one FAIL line naming the file and the rule, the other files are still
checked, the exit status is 1 at the end, and nothing raises a traceback."""

from __future__ import annotations

import errno
import pathlib

import pytest

from fin_ia_models.data.schema import with_meta
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_pipeline.cli import main
from tests.conftest import make_candles
from tests.test_malformed_corpus import CORPUS, project_csv, write_case


def good_file(folder):
    path = folder / "GOODUSDT_1h.csv"
    path.write_text(project_csv(make_candles(48)))
    return path


@pytest.mark.parametrize("case_id, builder, rule, line", CORPUS, ids=[c[0] for c in CORPUS])
def test_every_corpus_case_is_reported_and_the_next_file_still_checked(tmp_path, capsys, case_id, builder, rule, line):
    bad = write_case(tmp_path, builder)
    good = good_file(tmp_path)
    assert main(["validate", str(bad), str(good)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {bad}\n" in out and f"[{rule}]" in out
    if line is not None:
        assert f"line {line}" in out
    assert f"ok   {good}\n  48 candles" in out and "1 of 2 files ok" in out


def test_a_missing_path_is_reported_and_the_other_files_checked(tmp_path, capsys):
    good = good_file(tmp_path)
    missing = tmp_path / "BTCUSDT_1h.csv"
    assert main(["validate", str(missing), str(good), str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {missing}: no such file\n" in out
    assert f"ok   {good}" in out
    assert f"FAIL {tmp_path}\n  [not_a_file]" in out  # a folder given by mistake
    assert "1 of 3 files ok" in out


def test_all_good_files_exit_zero(tmp_path, capsys):
    assert main(["validate", str(good_file(tmp_path))]) == 0
    assert capsys.readouterr().out.startswith("ok   ")


def test_a_damaged_stored_partition_is_reported(tmp_path, capsys):
    path = tmp_path / "2024-01-01.parquet"
    write_candles_parquet(with_meta(make_candles(24), "BTC/USDT", "1h"), path, day="2024-01-01")
    path.write_bytes(path.read_bytes()[:-30])
    assert main(["validate", "--timeframe", "1h", str(path)]) == 1
    assert "[unreadable]" in capsys.readouterr().out


def test_an_unreadable_file_is_reported(tmp_path, capsys, monkeypatch):
    """A read error (bad sector, permissions) is one FAIL line too; simulated, since this runs as root."""
    path = good_file(tmp_path)

    def failing_read(self):
        raise OSError(errno.EIO, "Input/output error", str(self))

    monkeypatch.setattr(pathlib.Path, "read_bytes", failing_read)
    assert main(["validate", str(path)]) == 1
    assert f"FAIL {path}: cannot read it (OSError: Input/output error)" in capsys.readouterr().out
