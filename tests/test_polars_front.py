"""The polars API for a polars user: what comes back for each kind of input, temporary folders, modes,
misspelt keywords and Series."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

import batchinfer
import batchinfer.polars as bpl
from batchinfer.io.layout import parts_glob

TEXTS = ["I loved every minute of it", "a dull, lifeless waste of time", "fine", "not bad at all"]


@pytest.fixture
def frame():
    return pl.DataFrame({"id": list(range(len(TEXTS))), "text": TEXTS})


def options(model):
    return {"task": "text-classification", "model": str(model)}


def test_a_dataframe_gives_a_dataframe_with_or_without_output(tmp_path, frame, tiny_classifier):
    in_memory = batchinfer.predict(frame, "text", **options(tiny_classifier))
    written = batchinfer.predict(frame, "text", output=str(tmp_path / "out"), batch_rows=2, **options(tiny_classifier))
    assert isinstance(written, pl.DataFrame) and written.equals(in_memory)
    assert written.equals(pl.read_parquet(parts_glob(str(tmp_path / "out"))))
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 2 and (tmp_path / "out" / "_SUCCESS").exists()
    assert isinstance(frame.infer.predict("text", output=str(tmp_path / "out"), **options(tiny_classifier)),
                      pl.DataFrame)
    lazy = batchinfer.predict(frame.lazy(), "text", output=str(tmp_path / "lazy"), **options(tiny_classifier))
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect().equals(in_memory)


def test_python_calls_overwrite_unless_told(tmp_path, frame, tiny_classifier):
    out = str(tmp_path / "out")
    batchinfer.predict(frame, "text", output=out, **options(tiny_classifier))
    again = batchinfer.predict(frame.head(2), "text", output=out, **options(tiny_classifier))  # mode="overwrite"
    assert again.height == 2 and pl.read_parquet(parts_glob(out)).height == 2
    with pytest.raises(batchinfer.OutputError, match="already holds a complete run"):
        batchinfer.predict(frame, "text", output=out, mode="error", **options(tiny_classifier))


def test_no_temporary_folder_unless_a_lazyframe_needs_one(frame, tiny_classifier, monkeypatch):
    def no_folder(*args, **kwargs):
        raise AssertionError("a temporary folder was made")

    monkeypatch.setattr(bpl.tempfile, "mkdtemp", no_folder)
    spec = bpl.job_from_call("text", **options(tiny_classifier))
    assert spec.output.path.endswith(bpl._IN_MEMORY) and not Path(spec.output.path).exists()
    batchinfer.predict(frame, "text", **options(tiny_classifier))
    frame.with_columns(p=pl.col("text").infer.classify(model=str(tiny_classifier)))
    with pytest.raises(TypeError):  # a call that cannot run makes no folder either
        batchinfer.predict(frame.lazy(), "text", topk=2, **options(tiny_classifier))


def test_a_lazyframe_without_output_keeps_its_folder_until_exit(frame, tiny_classifier):
    before = list(bpl._TEMP_OUTPUTS)
    lazy = batchinfer.predict(frame.lazy(), "text", **options(tiny_classifier))
    [folder] = [f for f in bpl._TEMP_OUTPUTS if f not in before]
    assert Path(folder).name.startswith("batchinfer-") and (Path(folder) / "_SUCCESS").exists()
    derived = lazy.select("label")
    del lazy
    import gc

    gc.collect()
    assert derived.collect().height == len(TEXTS)  # still readable


EXIT_PROBE = textwrap.dedent("""
    import sys
    import polars as pl
    import batchinfer, batchinfer.polars as bpl
    lazy = batchinfer.predict(pl.LazyFrame({"text": ["good", "bad"]}), "text", task="text-classification",
                              model=sys.argv[1])
    assert lazy.collect().height == 2
    print(bpl._TEMP_OUTPUTS[-1])
""")


def test_temporary_folders_are_removed_at_exit(tiny_classifier):
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tiny_classifier)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = Path(proc.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("batchinfer-") and not folder.exists()


def test_a_misspelt_keyword_gets_a_guess_in_python_terms(frame, tiny_classifier):
    with pytest.raises(TypeError, match=r"unknown option 'topk'; did you mean 'top_k'\?.*on_error='skip'"):
        batchinfer.predict(frame, "text", topk=2, **options(tiny_classifier))
    with pytest.raises(TypeError, match=r"did you mean 'keep_columns'\?"):
        frame.infer.predict("text", keep_column=["id"], **options(tiny_classifier))


def test_a_series_gives_a_dataframe_of_it_and_its_predictions(frame, tiny_classifier):
    want = batchinfer.predict(frame.select("text"), "text", **options(tiny_classifier))
    named = batchinfer.predict(frame["text"].alias("review"), **options(tiny_classifier))
    assert named.columns == ["review", "label", "score"]
    assert named.rename({"review": "text"}).equals(want)
    unnamed = batchinfer.predict(pl.Series(TEXTS), **options(tiny_classifier))
    assert unnamed.equals(want)
    with pytest.raises(TypeError, match="reads the Series itself"):
        batchinfer.predict(frame["text"], "other", **options(tiny_classifier))


@pytest.mark.parametrize("order", ["batchinfer first", "polars first"])
def test_importing_batchinfer_leaves_polars_until_it_is_imported(order):
    """`import batchinfer` does not import polars (a third of its import time; the CLI needs none), yet
    `df.infer`, `lf.infer` and `pl.col(...).infer` exist whichever of the two is imported first."""
    imports = "import batchinfer, sys; assert 'polars' not in sys.modules; import polars as pl" \
        if order == "batchinfer first" else "import polars as pl; import batchinfer"
    code = (f"{imports}; print(all(hasattr(x, 'infer') for x in (pl.DataFrame({{'a': [1]}}), "
            "pl.LazyFrame({'a': [1]}), pl.col('a'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
