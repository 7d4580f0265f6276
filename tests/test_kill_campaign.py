"""Kill campaign: runs killed at random moments (not test_resume.py's named fault points), then resumed.

The input is several files that the engine must turn into one table: CSV files whose columns infer different
types (a sparse column that is entirely empty in the file that sorts first, a count column that is all
integers in some CSVs and text in another) and a Parquet file with an int32 id column (CSV infers int64).
Units are small (50 rows), so a run commits dozens of parts.

Each trial is seeded (`BATCHINFER_KILL_SEED` overrides the base seed): it starts `batchinfer run` as a
subprocess and kills it (SIGKILL mostly, sometimes SIGTERM or SIGINT) either after a random delay from process
start (uniform over a clean run's measured length) or once a random number of units are committed (plus a
little jitter, measured by watching the manifest: no fault hooks). It kills 1-3 runs in a row, then resumes to
completion and compares the output with an uninterrupted run: the same rows in the same order, predictions
exactly equal, `_SUCCESS` counting the real rows, no temporary or staging files, and one schema (polars and
pyarrow read the folder as one table). Fix-and-resume trials complete a run, change one input CSV, kill the
resume (at the moment `plan.json` is rewritten, or later), and check that neither `mode = "resume"` (with or
without `--if-complete skip`) nor `mode = "error"` calls the folder complete while rows are missing.

A failure message names the seed and every kill (signal, moment, return code) so the trial can be replayed;
the kill moments are wall-clock or progress based, so a replay repeats the same plan, not the same
nanosecond. `python bench/kill_campaign.py --trials N --seed S` runs many more trials.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.test_bad_day import write_job as write_bad_day_job

EXE = str(Path(sys.executable).parent / "batchinfer")
BASE_SEED = int(os.environ.get("BATCHINFER_KILL_SEED", "20240617"))
KILL_TRIALS = 8  # with FIX_TRIALS: 70-100 s for the module on 2 busy cores (bench/kill_campaign.py runs more)
FIX_TRIALS = 4
BATCH_ROWS = 50
FIXED_FILE = "b_sparse.csv"  # the input file that a fix-and-resume trial changes: the second in name order
FIXED_PARTS = "part-00001-"  # so its units are these
WORDS = "good bad fine awful great terrible movie plot actor scene boring moving lovely dull".split()
QUOTED = ['she said "fine, really"', "commas, commas, and more, commas", '"quoted" start', "tab\tinside"]
SIGNALS = {signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


# -- input data ------------------------------------------------------------------------------------------------
def _texts(rng: np.random.Generator, n: int) -> list[str | None]:
    texts: list[str | None] = [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) for _ in range(n)]
    for i in range(0, n, 37):
        texts[i] = QUOTED[(i // 37) % len(QUOTED)]
    texts[3], texts[5] = "", None
    return texts


def _sparse(n: int, every: int, tag: str) -> list[str | None]:
    return [f"{tag}-{i}" if every and i % every == every - 1 else None for i in range(n)]


def input_frames(seed: int = 7) -> dict[str, pl.DataFrame]:
    """The campaign's inputs by file name (names sort in this order; the first CSV's `note` is all empty)."""
    rng = np.random.default_rng(seed)

    def frame(start, n, note, count, id_type=pl.Int64):
        return pl.DataFrame({"id": pl.Series(np.arange(start, start + n), dtype=id_type), "text": _texts(rng, n),
                             "note": pl.Series(note, dtype=pl.String), "count": count})

    return {
        "a_blank.csv": frame(0, 320, _sparse(320, 0, "a"), list(range(320))),  # note: null-typed when inferred
        FIXED_FILE: frame(1000, 380, _sparse(380, 97, "b"), [i * 3 for i in range(380)]),
        "c_table.parquet": frame(2000, 300, _sparse(300, 41, "c"), [str(i) for i in range(300)], pl.Int32),
        "d_mixed.csv": frame(3000, 410, _sparse(410, 133, "d"),
                             [f"{i}+" if i % 50 == 17 else str(i) for i in range(410)]),  # integers and text
        "e_tail.csv": frame(4000, 290, _sparse(290, 289, "e"), list(range(290))),
    }


def fixed_frames(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The same inputs after someone fixed FIXED_FILE: two texts corrected and 130 rows appended."""
    old = frames[FIXED_FILE]
    texts = old["text"].to_list()
    texts[10], texts[200] = "fixed: a lovely moving scene", "fixed: dull and boring"
    rng = np.random.default_rng(99)
    extra = pl.DataFrame({"id": np.arange(5000, 5130), "text": _texts(rng, 130),
                          "note": pl.Series(_sparse(130, 60, "fix"), dtype=pl.String),
                          "count": list(range(130))})
    return {**frames, FIXED_FILE: pl.concat([old.with_columns(pl.Series("text", texts)), extra])}


def write_inputs(folder: Path, frames: dict[str, pl.DataFrame]) -> list[int]:
    """Write the files; return the ids in the order the output must hold them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if name.endswith(".parquet"):
            frame.write_parquet(folder / name)
        else:
            frame.write_csv(folder / name)
    return [i for name in sorted(frames) for i in frames[name]["id"].to_list()]


def write_job(root: Path, model: Path) -> Path:
    return write_bad_day_job(root, model, paths="data", batch_rows=BATCH_ROWS)


# -- the campaign: inputs, clean outputs, timings ---------------------------------------------------------------
@dataclass
class Reference:
    root: Path  # holds data/, job.toml and clean/ (the uninterrupted run's output)
    ids: list[int]
    rows: list[dict]
    parts: list[str]

    @property
    def clean(self) -> Path:
        return self.root / "clean"

    def units(self, prefix: str = "part-") -> int:
        return sum(p.startswith(prefix) for p in self.parts)


@dataclass
class Campaign:
    original: Reference
    fixed: Reference
    fixed_csv: Path  # FIXED_FILE after the fix, copied over a trial's input
    model: Path
    env: dict[str, str]
    seconds: float  # a clean run, process start to exit (model export cached)
    open_seconds: float  # process start to plan.json written: imports, model load, checks
    success_seconds: float  # process start to _SUCCESS written (the rest is the process ending)


def cli_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHINFER_")}
    return {**env, "BATCHINFER_CACHE": str(cache)}


def timed_clean_run(job: Path, out: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Run to completion in a subprocess; seconds from process start to plan.json, to _SUCCESS, to exit."""
    start = time.monotonic()
    proc = subprocess.Popen([EXE, "run", str(job), "--set", f"output.path={out}", "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    plan, success = out / "_batchinfer" / "plan.json", out / "_SUCCESS"
    opened = written = None
    while proc.poll() is None:
        if opened is None and plan.exists():
            opened = time.monotonic() - start
        if written is None and success.exists():
            written = time.monotonic() - start
        time.sleep(0.003)
    total = time.monotonic() - start
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"clean run of {job} failed ({proc.returncode}): {stdout}{stderr}")
    written = total if written is None else written
    return (written if opened is None else opened), written, total


def build_campaign(root: Path, model: Path, cache: Path) -> Campaign:
    env = cli_env(cache)
    frames = input_frames()
    refs = []
    timings = []
    for name, data in (("original", frames), ("fixed", fixed_frames(frames))):
        folder = root / name
        ids = write_inputs(folder / "data", data)
        job = write_job(folder, model)
        timings.append(timed_clean_run(job, folder / "clean", env))  # the first also exports the model
        parts = sorted(p.name for p in (folder / "clean").glob("part-*.parquet"))
        refs.append(Reference(folder, ids, part_rows(folder / "clean"), parts))
    opened, written, seconds = timings[-1]  # the second run: the model export is cached by then
    return Campaign(refs[0], refs[1], refs[1].root / "data" / FIXED_FILE, model, env, seconds, opened, written)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, tiny_classifier, session_cache) -> Campaign:
    return build_campaign(tmp_path_factory.mktemp("kill-campaign"), tiny_classifier, session_cache)


# -- reading and comparing outputs ------------------------------------------------------------------------------
def part_rows(out: Path) -> list[dict]:
    """Every row of every part, in part-name order, read part by part (works whatever the parts' schemas)."""
    rows: list[dict] = []
    for part in sorted(out.glob("part-*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def _first_difference(got: list[dict], want: list[dict]) -> str:
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"row {i}: got {_short(g)}, want {_short(w)}"
    return f"the first {min(len(got), len(want))} rows agree, then one side ends"


def _short(row: dict) -> str:
    return "{" + ", ".join(f"{k}={str(v)[:24]!r}" for k, v in row.items()) + "}"


def compare(out: Path, ref: Reference) -> list[str]:
    """What differs between a finished output and the clean run, each problem tagged with what it is about."""
    problems = []
    if not (out / "_SUCCESS").exists():
        problems.append("[complete] no _SUCCESS")
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    if parts != ref.parts:
        missing, extra = sorted(set(ref.parts) - set(parts)), sorted(set(parts) - set(ref.parts))
        problems.append(f"[layout] parts differ from the clean run: {len(missing)} missing {missing[:4]}, "
                        f"{len(extra)} extra {extra[:4]}")
    done_dir = out / "_batchinfer" / "done"
    done = sorted(p.stem for p in done_dir.glob("*.json")) if done_dir.exists() else []
    if done != [p.removesuffix(".parquet") for p in parts]:
        problems.append(f"[layout] manifest ({len(done)} entries) does not match the parts ({len(parts)})")
    rows = part_rows(out)
    ids = [r.get("id") for r in rows]
    if ids != ref.ids:
        missing = sorted(set(ref.ids) - set(ids))
        extra = sorted(set(ids) - set(ref.ids))
        doubled = len(ids) - len(set(ids))
        problems.append(f"[rows] {len(ids)} rows, want {len(ref.ids)}: {len(missing)} ids missing "
                        f"{missing[:5]}, {len(extra)} unexpected {extra[:5]}, {doubled} doubled"
                        + ("" if missing or extra or doubled else ", order differs"))
    elif rows != ref.rows:
        bad = sum(g != w for g, w in zip(rows, ref.rows))
        problems.append(f"[predictions] {bad} rows differ from the clean run; {_first_difference(rows, ref.rows)}")
    if (out / "_SUCCESS").exists():
        try:
            success = json.loads((out / "_SUCCESS").read_text())
        except ValueError as exc:
            problems.append(f"[complete] _SUCCESS is not JSON: {exc}")
        else:
            if success.get("rows") != len(rows):
                problems.append(f"[complete] _SUCCESS says {success.get('rows')} rows, the parts hold {len(rows)}")
            if "units" in success and success["units"] != len(parts):
                problems.append(f"[complete] _SUCCESS says {success['units']} units, there are {len(parts)} parts")
    # (a lock file left by a killed run is not listed: it is harmless, the next writer takes it over)
    left = [str(p.relative_to(out)) for pattern in (".*tmp-*", "staging-*", ".probe-*") for p in out.rglob(pattern)]
    if left:
        problems.append(f"[leftovers] {left[:6]}")
    problems += one_schema(out, rows)
    return problems


def missing_output(problems: list[str]) -> list[str]:
    """The problems that mean the folder does not hold the complete output (not leftovers or schemas)."""
    return [p for p in problems if p.startswith(("[rows]", "[predictions]", "[layout]", "[complete]"))]


def one_schema(out: Path, rows: list[dict]) -> list[str]:
    """The folder reads as one table: every part has the same schema, and polars and pyarrow read it whole."""
    problems = []
    schemas: dict[str, list[str]] = {}
    for part in sorted(out.glob("part-*.parquet")):
        schemas.setdefault(str(pq.read_schema(part).remove_metadata()), []).append(part.name)
    if len(schemas) > 1:
        kinds = []
        for text, names in schemas.items():
            types = ", ".join(line.strip() for line in text.splitlines())
            kinds.append(f"{len(names)} part(s) like {names[0]}: {types}")
        problems.append(f"[one schema] parts have {len(schemas)} different schemas: " + " | ".join(kinds))
    ids = [r.get("id") for r in rows]
    readers = {
        "polars.read_parquet(out/*.parquet)": lambda: pl.read_parquet(str(out / "*.parquet"))["id"].to_list(),
        "pyarrow.dataset.dataset(out)": lambda: ds.dataset(out, format="parquet").to_table()["id"].to_pylist(),
        "pyarrow.parquet.read_table(out)": lambda: pq.read_table(out)["id"].to_pylist(),
    }
    for what, read in readers.items():
        try:
            got = read()
        except Exception as exc:  # noqa: BLE001 - any failure to read the folder as one table is the finding
            problems.append(f"[one schema] {what} fails: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        if got != ids:
            problems.append(f"[one schema] {what} gives {len(got)} rows, not the parts' {len(ids)} in order")
    return problems


# -- killing runs -----------------------------------------------------------------------------------------------
@dataclass
class Kill:
    """One run and how it was stopped. `moment`: ("time", s) | ("units", k, jitter) | ("plan", 0)
    | ("plan+units", k, jitter): after s seconds, once k units (of the changed file) are committed, or as
    soon as plan.json is rewritten."""

    sig: int
    moment: tuple
    args: tuple[str, ...] = ()
    rc: int | None = None
    sent_at: float | None = None  # seconds from process start; None: the run had ended before the moment
    committed_before: int = 0
    committed_after: int = 0
    stderr: str = ""

    def describe(self) -> str:
        kind, value, *jitter = self.moment
        when = {"time": f"{value:.3f}s after start", "units": f"at {value} committed units",
                "plan": "when plan.json was rewritten", "plan+units": f"at {value} redone units"}[kind]
        if jitter:
            when += f" +{jitter[0] * 1000:.0f}ms"
        sent = f"sent at {self.sent_at:.3f}s" if self.sent_at is not None else "run ended first"
        extra = " " + " ".join(self.args) if self.args else ""
        return (f"{SIGNALS[self.sig]} {when}{extra} ({sent}, rc {self.rc}, units {self.committed_before}"
                f"->{self.committed_after})")


def committed(out: Path, prefix: str = "part-") -> int:
    try:
        return sum(1 for e in os.scandir(out / "_batchinfer" / "done")
                   if e.name.startswith(prefix) and e.name.endswith(".json"))
    except FileNotFoundError:
        return 0


def _plan_stamp(out: Path):
    try:
        st = os.stat(out / "_batchinfer" / "plan.json")
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def run_killed(job: Path, out: Path, kill: Kill, env: dict[str, str], log: Path) -> Kill:
    """Start a run and stop it at `kill.moment` with `kill.sig`; fill in what happened."""
    kill.committed_before = committed(out)
    plan_before = _plan_stamp(out)
    kind, value, *rest = kill.moment
    jitter = rest[0] if rest else 0.0
    cmd = [EXE, "run", str(job), "--set", f"output.path={out}", "-q", *kill.args]
    with open(log, "w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        triggered = None
        deadline = start + 300
        while proc.poll() is None and time.monotonic() < deadline:
            now = time.monotonic()
            if triggered is None:
                if kind == "time":
                    hit = now - start >= value
                elif kind == "units":
                    hit = committed(out) >= value
                elif kind == "plan":
                    hit = _plan_stamp(out) != plan_before
                else:  # plan+units: units of the changed file redone after the plan was rewritten
                    hit = _plan_stamp(out) != plan_before and committed(out, FIXED_PARTS) >= value
                if hit:
                    triggered = now
            if triggered is not None and now - triggered >= jitter:
                try:
                    proc.send_signal(kill.sig)
                    kill.sent_at = time.monotonic() - start
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.002 if kind != "time" else max(0.0005, min(0.01, value - (now - start))))
        try:
            kill.rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a run that ignores SIGTERM/SIGINT for a minute: a finding
            proc.kill()
            proc.wait()
            kill.rc = None
        err.seek(0)
        kill.stderr = err.read()[-600:]
    kill.committed_after = committed(out)
    return kill


def check_after_kill(out: Path, kill: Kill, n: int) -> list[str]:
    """What must hold in the folder right after any kill: whole parts, readable manifest, honest exit code.

    Any nonzero exit code of a killed run is accepted (SIGKILL: -9; SIGTERM: -15, or 143 once handled; SIGINT:
    130, or -2 when it lands during the imports).
    """
    problems = []
    tag = f"[after kill {n}]"
    if kill.rc is None:
        problems.append(f"{tag} the run did not exit within 60 s of {SIGNALS[kill.sig]}")
    elif kill.rc == 0 and not (out / "_SUCCESS").exists():
        problems.append(f"{tag} exit 0 without _SUCCESS")
    elif kill.sent_at is None and kill.rc != 0:
        problems.append(f"{tag} the run failed by itself (rc {kill.rc}) before the kill: {kill.stderr[-300:]}")
    for part in sorted(out.glob("part-*.parquet")):
        try:
            pq.read_table(part)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{tag} visible part {part.name} is not a whole Parquet file: {exc}")
    for entry in sorted((out / "_batchinfer" / "done").glob("*.json")) if (out / "_batchinfer").exists() else []:
        try:
            json.loads(entry.read_text())
        except ValueError:
            problems.append(f"{tag} manifest entry {entry.name} is not whole JSON")
    return problems


def draw_signal(rng: random.Random) -> int:
    return rng.choices([signal.SIGKILL, signal.SIGTERM, signal.SIGINT], weights=[6, 2, 2])[0]


def draw_moment(rng: random.Random, campaign: Campaign, done_now: int, total: int) -> tuple:
    """A delay uniform over a clean run's whole length (most land in the imports), a delay uniform over the
    part of it that writes the output, or a number of committed units plus a little jitter."""
    roll = rng.random()
    if roll < 0.3 or done_now >= total:
        return ("time", round(rng.uniform(0.05, campaign.seconds), 3))
    if roll < 0.5:
        return ("time", round(rng.uniform(campaign.open_seconds, campaign.success_seconds + 0.05), 3))
    return ("units", rng.randint(done_now + 1, total), round(rng.uniform(0.0, 0.03), 4))


def draw_args(rng: random.Random) -> tuple[str, ...]:
    return ("--if-complete", "skip") if rng.random() < 0.3 else ()


def finish(job: Path, out: Path, args: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run to completion in this process (the imports are paid once); (exit code, output)."""
    from click.testing import CliRunner

    from batchinfer.cli import main

    result = CliRunner().invoke(main, ["run", str(job), "--set", f"output.path={out}", *args])
    return result.exit_code, result.output.strip()[-400:]


# -- trials ------------------------------------------------------------------------------------------------------
@dataclass
class Trial:
    name: str
    seed: str
    kills: list[Kill] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        kind, index = self.name.rsplit("-", 1)
        base = self.seed.split(":")[0]
        replay = f"python bench/kill_campaign.py --seed {base} --only {self.name}"
        if int(index) < {"random_kills": KILL_TRIALS, "fix_and_resume": FIX_TRIALS}[kind]:
            replay = f"BATCHINFER_KILL_SEED={base} pytest 'tests/test_kill_campaign.py::test_{kind}[{index}]' or " \
                     + replay
        lines = [f"trial {self.name} (seed {self.seed!r}; replay: {replay})"]
        lines += [f"  kill {i + 1}: {k.describe()}" for i, k in enumerate(self.kills)]
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)


def random_kill_trial(campaign: Campaign, work: Path, index: int, base_seed: int = BASE_SEED) -> Trial:
    """Kill 1-3 runs in a row at random moments, then resume to completion; compare with the clean run."""
    trial = Trial(f"random_kills-{index}", f"{base_seed}:kill:{index}")
    rng = random.Random(trial.seed)
    ref = campaign.original
    job, out = ref.root / "job.toml", work / "out"
    total = ref.units()
    for n in range(1, rng.choice([1, 2, 2, 3]) + 1):
        kill = Kill(draw_signal(rng), draw_moment(rng, campaign, committed(out), total), draw_args(rng))
        trial.kills.append(run_killed(job, out, kill, campaign.env, work / f"kill-{n}.log"))
        trial.problems += check_after_kill(out, kill, n)
        if kill.rc == 0:
            break  # it finished before the kill: the output is complete, more kills would hit a no-op
    args = draw_args(rng)
    code, output = finish(job, out, args)
    trial.notes.append(f"final run{' ' + ' '.join(args) if args else ''}: exit {code}: {output[-200:]}")
    if code != 0:
        trial.problems.append(f"[final] resume exited {code}: {output}")
    trial.problems += compare(out, ref)
    return trial


def fix_and_resume_trial(campaign: Campaign, work: Path, index: int, base_seed: int = BASE_SEED) -> Trial:
    """Complete a run, fix one input CSV, kill the resume(s), then check error mode and resume to the end."""
    trial = Trial(f"fix_and_resume-{index}", f"{base_seed}:fix:{index}")
    rng = random.Random(trial.seed)
    shutil.copytree(campaign.original.root / "data", work / "data")
    job, out = write_job(work, campaign.model), work / "out"
    code, output = finish(job, out)
    assert code == 0, f"the first, complete run failed: {output}"
    shutil.copyfile(campaign.fixed_csv, work / "data" / FIXED_FILE)
    ref = campaign.fixed
    redo = ref.units(FIXED_PARTS)
    first = ("plan", 0) if index == 0 else rng.choice([
        ("plan", 0), ("plan+units", rng.randint(1, redo), round(rng.uniform(0, 0.02), 4)),
        ("time", round(rng.uniform(0.05, campaign.seconds), 3)),
        ("time", round(rng.uniform(campaign.open_seconds, campaign.success_seconds + 0.05), 3))])
    for n in range(1, 3 if rng.random() < 0.4 else 2):  # sometimes the next resume is killed too
        sig = signal.SIGKILL if index == 0 else draw_signal(rng)
        moment = first if n == 1 else draw_moment(rng, campaign, committed(out), ref.units())
        kill = run_killed(job, out, Kill(sig, moment, draw_args(rng)), campaign.env, work / f"kill-{n}.log")
        trial.kills.append(kill)
        trial.problems += check_after_kill(out, kill, n)
        if kill.rc == 0:
            break
    trial.problems += error_mode_checks(job, out, ref, trial)
    args = ("--if-complete", "skip") if index == 1 or rng.random() < 0.5 else ()
    code, output = finish(job, out, args)
    trial.notes.append(f"final resume{' ' + ' '.join(args) if args else ''}: exit {code}: {output[-200:]}")
    if code != 0:
        trial.problems.append(f"[final] resume exited {code}: {output}")
    found = compare(out, ref)
    if missing_output(found) and "already complete" in output:
        found.insert(0, f"[fix-and-resume] the resume said {output!r} while the folder is not the complete output")
    trial.problems += found
    return trial


def _snapshot(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def error_mode_checks(job: Path, out: Path, ref: Reference, trial: Trial) -> list[str]:
    """`output.mode = "error"` must refuse the folder (exit 6) unless it truly is the complete output, and
    must change nothing."""
    problems = []
    for args in ((), ("--if-complete", "skip")):
        before = _snapshot(out)
        code, output = finish(job, out, ("--set", "output.mode=error", *args))
        label = "mode=error" + (" --if-complete skip" if args else "")
        trial.notes.append(f"{label}: exit {code}: {output[-160:]}")
        claims_complete = code == 0 or "complete run" in output
        if claims_complete:
            wrong = missing_output(compare(out, ref))
            if wrong:
                problems.append(f"[error mode] {label} exited {code} calling the folder complete ({output!r}), "
                                f"but it is not the complete output: {wrong[0]}")
        if code not in (0, 6):
            problems.append(f"[error mode] {label} exited {code}, want 6 (refused) or 0: {output}")
        if _snapshot(out) != before:
            problems.append(f"[error mode] {label} changed the folder")
    return problems


# -- tests -------------------------------------------------------------------------------------------------------
def test_clean_run_is_every_row_once_in_order(campaign):
    got = part_rows(campaign.original.clean)
    assert [r["id"] for r in got] == campaign.original.ids
    assert json.loads((campaign.original.clean / "_SUCCESS").read_text())["rows"] == len(got)
    assert campaign.original.units() == sum(-(-f.height // BATCH_ROWS) for f in input_frames().values())
    assert sorted(input_frames())[1] == FIXED_FILE
    print(f"clean run: {campaign.seconds:.2f} s from process start, plan.json at {campaign.open_seconds:.2f} s, "
          f"_SUCCESS at {campaign.success_seconds:.2f} s")


@pytest.mark.parametrize("ref", ["original", "fixed"])
def test_clean_output_reads_as_one_table(campaign, ref):
    reference = getattr(campaign, ref)
    problems = one_schema(reference.clean, reference.rows)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("index", range(KILL_TRIALS))
def test_random_kills(campaign, tmp_path, index):
    trial = random_kill_trial(campaign, tmp_path, index)
    print(trial.report())  # shown with -s or -rA: what each kill hit
    assert not trial.problems, trial.report()


@pytest.mark.parametrize("index", range(FIX_TRIALS))
def test_fix_and_resume(campaign, tmp_path, index):
    trial = fix_and_resume_trial(campaign, tmp_path, index)
    print(trial.report())
    assert not trial.problems, trial.report()
