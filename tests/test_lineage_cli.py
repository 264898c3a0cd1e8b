"""`fin-ia lineage` never creates a store and tells a missing store, a dead server and an unknown model apart
(#13, #16): each is exit status 2 with a message naming the URI it tried, within seconds."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest

from fin_ia_pipeline.cli import main
from tests.test_tracking import log_tiny
from fin_ia_models.tracking.runs import TrackingTarget


def lineage(capsys, *argv: str) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(["lineage", *argv])
    return code, capsys.readouterr().err, time.monotonic() - started


def test_outside_the_repository_it_names_the_store_it_tried_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "FIN_IA_HOME", "FIN_IA_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    code, err, _ = lineage(capsys, "fin-ia-jepa@champion")
    assert code == 2
    assert "no MLflow tracking store at sqlite:///" in err and "does not exist" in err and "fin-ia demo" in err
    assert list(tmp_path.rglob("*")) == [], "lineage created files"


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text" * 4], ids=["empty", "garbage"])
def test_an_empty_or_foreign_file_is_not_turned_into_a_store(tmp_path, capsys, content):
    db = tmp_path / "mlflow.db"
    db.write_bytes(content)
    code, err, _ = lineage(capsys, "fin-ia-jepa", "--tracking-uri", f"sqlite:///{db}")
    assert code == 2 and f"sqlite:///{db}" in err and "is not an MLflow tracking store" in err
    assert db.read_bytes() == content  # untouched: no tables created, no migration run


def test_a_sqlite_database_without_mlflow_tables_is_refused(tmp_path, capsys):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (x)")
    code, err, _ = lineage(capsys, "fin-ia-jepa", "--tracking-uri", f"sqlite:///{db}")
    assert code == 2 and "has no MLflow tables" in err
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_a_dead_server_is_a_connection_error_not_model_not_found(capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, err, seconds = lineage(capsys, "fin-ia-jepa@champion", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert code == 2 and f"cannot reach the MLflow tracking server http://127.0.0.1:{port}" in err
    assert "no registered model" not in err
    assert seconds < 30


@pytest.mark.slow
def test_a_server_that_never_answers_fails_within_30_s(capsys):
    with socket.socket() as s:  # accepts connections (kernel backlog) but never replies
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        code, err, seconds = lineage(capsys, "fin-ia-jepa", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert code == 2 and f"http://127.0.0.1:{port}" in err and "timed out" in err
    assert seconds < 30


def test_an_unknown_model_in_a_real_store_lists_the_known_ones(tmp_path, capsys):
    target = TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    log_tiny(target, "fin-ia-tokenizer", {"val_loss": 0.5})
    code, err, _ = lineage(capsys, "fin-ia-jepa", "--tracking-uri", target.tracking_uri)
    assert code == 2
    assert f"no registered model 'fin-ia-jepa' in {target.tracking_uri} (known: fin-ia-tokenizer)" in err
    code, err, _ = lineage(capsys, "fin-ia-tokenizer@champion", "--tracking-uri", target.tracking_uri)
    assert code == 2 and "fin-ia-tokenizer has no alias @champion" in err
    assert main(["lineage", "fin-ia-tokenizer/1", "--tracking-uri", target.tracking_uri]) == 0
    assert "fin-ia-tokenizer v1" in capsys.readouterr().out
