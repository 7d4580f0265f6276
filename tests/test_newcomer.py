"""What a newcomer reaches for: `batchinfer init DATA_FILE`, `batchinfer run JOB.toml --limit N`, the cron
wrapper under cron's bare environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.io.limited import LimitedSource
from batchinfer.io.source import Source
from batchinfer.job import InputSpec
from test_cli import job, make_frame, read_output

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- batchinfer init ------------------------------------------------------------------------------------

def reviews() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2, 3, 4], "label": ["a", "b", "c", "d"],
                         "customer": ["Ann", "Bob", "Cy", "Di"],
                         "review": ["I loved every minute of it", "a dull, lifeless waste of time",
                                    "wonderful, moving and funny", "boring and far too long"]})


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_init_writes_a_job_that_validates_and_runs(tmp_path, monkeypatch, kind):
    data = tmp_path / "data" / f"reviews.{kind}"
    data.parent.mkdir()
    getattr(reviews(), f"write_{kind}")(data)
    monkeypatch.chdir(tmp_path)
    made = invoke("init", f"data/reviews.{kind}", "-o", "jobs/reviews.toml")
    assert made.exit_code == 0, made.output
    text = (tmp_path / "jobs" / "reviews.toml").read_text()
    assert 'column = "review"' in text and 'name = "sample:sentiment-minilm"' in text
    assert text.count("#") > 10  # commented: the main keys are explained
    assert 'label = "predicted_label"' in text  # the input's own `label` column would clash otherwise
    checked = invoke("validate", "jobs/reviews.toml")
    assert checked.exit_code == 0, checked.output
    ran = invoke("run", "jobs/reviews.toml")
    assert ran.exit_code == 0, ran.output
    out = read_output(tmp_path / "data" / "reviews-predictions")  # next to the data file
    assert out["id"].to_list() == [1, 2, 3, 4]
    assert out["predicted_label"].to_list() == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]


def test_init_default_name_and_no_overwrite(tmp_path, monkeypatch):
    reviews().write_parquet(tmp_path / "reviews.parquet")
    monkeypatch.chdir(tmp_path)
    assert invoke("init", "reviews.parquet").exit_code == 0
    before = (tmp_path / "reviews.toml").read_text()
    again = invoke("init", "reviews.parquet")
    assert again.exit_code == 3
    assert "already exists" in again.stderr and "-o" in again.stderr
    assert (tmp_path / "reviews.toml").read_text() == before


def test_init_picks_text_column_by_length_without_a_telling_name(tmp_path, monkeypatch):
    pl.DataFrame({"code": ["A1", "B2"], "notes": ["a long free text written by a person", "another long one"],
                  "n": [1, 2]}).write_csv(tmp_path / "x.csv")
    monkeypatch.chdir(tmp_path)
    made = invoke("init", "x.csv", "-o", "x.toml")
    assert made.exit_code == 0, made.output
    assert 'column = "notes"' in (tmp_path / "x.toml").read_text()
    assert "longest" in made.output


def test_init_without_a_string_column_is_a_clear_error(tmp_path, monkeypatch):
    pl.DataFrame({"id": [1, 2], "value": [0.5, 0.7]}).write_parquet(tmp_path / "numbers.parquet")
    monkeypatch.chdir(tmp_path)
    made = invoke("init", "numbers.parquet")
    assert made.exit_code == 4
    assert "no text (string) column" in made.stderr and "id (int64)" in made.stderr
    assert not (tmp_path / "numbers.toml").exists()


# -- batchinfer run --limit ---------------------------------------------------------------------------------

def test_run_limit_writes_the_first_rows_to_a_scratch_folder(tmp_path, tiny_classifier):
    make_frame(3000).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    assert invoke("run", str(path)).exit_code == 0  # the real output holds a run (mode = "error")
    real = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "out").rglob("*"))
    ran = invoke("run", str(path), "--limit", "25")
    assert ran.exit_code == 0, ran.output
    assert "is not touched" in ran.stderr
    scratch = Path(ran.stdout.strip().rsplit("-> ", 1)[1])
    assert scratch != tmp_path / "out" and not scratch.is_relative_to(tmp_path)
    out = read_output(scratch)
    assert out["row_id"].to_list() == list(range(25))
    assert "25 rows" in ran.stdout
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "out").rglob("*")) == real
    again = invoke("run", str(path), "--limit", "10")  # a second look replaces the first: no folders pile up
    assert again.exit_code == 0, again.output
    assert Path(again.stdout.strip().rsplit("-> ", 1)[1]) == scratch
    assert read_output(scratch)["row_id"].to_list() == list(range(10))
    other = invoke("run", str(path), "--limit", "10", "--set", "batching.batch_size=4")
    assert Path(other.stdout.strip().rsplit("-> ", 1)[1]) != scratch  # other --set values: their own folder
    shutil.rmtree(Path(other.stdout.strip().rsplit("-> ", 1)[1]))
    shutil.rmtree(scratch)


def test_run_limit_rejects_ray(tmp_path, tiny_classifier):
    make_frame(10).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    assert invoke("run", str(path), "--limit", "5", "--executor", "ray").exit_code == 2
    assert invoke("run", str(path), "--limit", "0").exit_code == 2


def test_limited_source_reads_only_the_first_rows(tmp_path, monkeypatch):
    table = pa.table({"text": [f"row {i}" for i in range(5000)]})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=100)
    pulled = []
    original = pq.ParquetFile.iter_batches

    def counting(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            pulled.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    source = LimitedSource(InputSpec(path=str(tmp_path / "in.parquet"), column="text"), 250)
    source.check("text", None)
    got = [sb.batch for sb in source.batches(["text"], None)]
    assert sum(b.num_rows for b in got) == 250
    assert pa.Table.from_batches(got).column("text").to_pylist() == [f"row {i}" for i in range(250)]
    assert sum(pulled) <= 250  # not the other 4,750 rows
    assert source.total_rows() == 250


def test_limited_source_stops_before_a_broken_csv_tail(tmp_path, tiny_classifier):
    rows = ["row_id,text"] + [f"{i},text number {i} " + "x" * 60 for i in range(30000)]  # ~2 MB: several blocks
    (tmp_path / "in.csv").write_text("\n".join(rows) + '\n30000,ragged,row,too,many\n')
    path = job(tmp_path, tiny_classifier, input_path="in.csv")
    assert invoke("run", str(path)).exit_code == 4  # reading everything finds the broken tail
    ran = invoke("run", str(path), "--limit", "40")
    assert ran.exit_code == 0, ran.output
    scratch = Path(ran.stdout.strip().rsplit("-> ", 1)[1])
    assert read_output(scratch)["row_id"].to_list() == list(range(40))
    shutil.rmtree(scratch)


def test_plain_source_is_unchanged_by_the_limit_class(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"]}), tmp_path / "in.parquet")
    assert Source(InputSpec(path=str(tmp_path / "in.parquet"), column="text")).total_rows() == 2


# -- the cron wrapper under cron's environment ------------------------------------------------------------

WRAPPER = ROOT / "examples" / "cron" / "batchinfer-cron.sh"


def cron_env(tmp_path: Path, **extra: str) -> list[str]:
    """`env -i` as cron starts a command: HOME, a bare PATH, nothing else (plus what the test names)."""
    keep = {"BATCHINFER_CACHE": os.environ["BATCHINFER_CACHE"]}
    if os.environ.get("PYTHONPATH"):  # a worktree's code over the installed package
        keep["PYTHONPATH"] = os.environ["PYTHONPATH"]
    pairs = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", **keep, **extra}
    return ["env", "-i", *(f"{k}={v}" for k, v in pairs.items())]


@pytest.mark.skipif(shutil.which("env") is None or shutil.which("bash") is None, reason="needs env and bash")
def test_cron_wrapper_runs_with_crons_bare_path(tmp_path, tiny_classifier):
    make_frame(120).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    venv_batchinfer = Path(sys.executable).parent / "batchinfer"
    assert venv_batchinfer.exists() and not str(venv_batchinfer.parent).startswith(("/usr/bin", "/bin"))
    missing = subprocess.run([*cron_env(tmp_path), "bash", str(WRAPPER), str(path), str(tmp_path / "logs")],
                             capture_output=True, text=True, timeout=120)
    if not (ROOT / ".venv" / "bin" / "batchinfer").exists():  # no repository venv to fall back on
        assert missing.returncode == 127
        assert "BATCHINFER=" in missing.stderr and "PATH=" in missing.stderr  # says what to set
    for extra in ({"BATCHINFER": str(venv_batchinfer)},                          # the absolute path
                  {"PATH": f"{venv_batchinfer.parent}:/usr/bin:/bin"}):          # or PATH, as the crontab does
        done = subprocess.run([*cron_env(tmp_path, **extra), "bash", str(WRAPPER), str(path), str(tmp_path / "logs")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr + (tmp_path / "logs" / "job.log").read_text()
    assert read_output(tmp_path / "out")["row_id"].to_list() == list(range(120))
    assert '"status": "already complete"' in (tmp_path / "logs" / "job.log").read_text()  # the second run


def test_example_crontab_sets_path():
    lines = (ROOT / "examples" / "cron" / "crontab").read_text().splitlines()
    path_line = next(i for i, line in enumerate(lines) if line.startswith("PATH="))
    job_line = next(i for i, line in enumerate(lines) if "batchinfer-cron.sh" in line and not line.startswith("#"))
    assert path_line < job_line and ".venv/bin" in lines[path_line].split(":")[0]


def test_sst2_bench_says_what_data_is_missing(tmp_path):
    bench = tmp_path / "repo" / "bench"
    bench.mkdir(parents=True)
    for name in ("sst2_accuracy.py", "sst2_dev.toml"):
        shutil.copy(ROOT / "bench" / name, bench / name)
    done = subprocess.run([sys.executable, str(bench / "sst2_accuracy.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "SST-2 dev set is missing" in done.stderr and "dev.parquet" in done.stderr
