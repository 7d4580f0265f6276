"""Kill campaign, long version: many runs killed at random moments and resumed (tests/test_kill_campaign.py).

    python bench/kill_campaign.py [--trials 100] [--seed 20240617] [--fix-share 0.3] [--workdir DIR] [--keep]
                                  [--only random_kills-37 ...] [--ignore "one schema" ...]

Each trial is the test module's: a random-kill trial kills 1-3 runs in a row (SIGKILL, SIGTERM or SIGINT, at
a random delay from process start or once a random number of units are committed) and then resumes to the
end; a fix-and-resume trial completes a run, changes one input CSV, kills the resume (at the moment plan.json
is rewritten, or later) and checks error mode and the final resume. Every final output is compared with an
uninterrupted run (rows, order, predictions exact, `_SUCCESS`, leftovers, one schema).

Trial N of a kind has the seed "SEED:kill:N" or "SEED:fix:N", the same as the test module's, so a failure is
replayed with `--seed SEED --only NAME` (trials below the module's count also with pytest). The model is the
suite's tiny random classifier, built here; the export cache is under the work folder. One line per trial,
the report of each failing one, and a summary at the end; the exit code is 1 if any trial failed.
`--ignore TAG` leaves problems with that tag (e.g. "one schema") out of the verdict, to look at the others.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_tiny_classifier(path: Path) -> Path:
    """The suite's `tiny_classifier` fixture (tests/conftest.py), built outside pytest."""
    if (path / "config.json").exists():
        return path
    from tests.conftest import build_tiny_classifier as build

    return build(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: $BATCHINFER_KILL_SEED "
                                                                 "or the test module's)")
    parser.add_argument("--fix-share", type=float, default=0.3, help="share of fix-and-resume trials")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep every trial's folder (default: failed only)")
    parser.add_argument("--only", action="append", default=[], help="run only these trials (e.g. random_kills-7)")
    parser.add_argument("--ignore", action="append", default=[], help="problem tag left out of the verdict")
    args = parser.parse_args()
    if args.seed is not None:
        os.environ["BATCHINFER_KILL_SEED"] = str(args.seed)  # before the import: the module reads it

    import tests.test_kill_campaign as kc

    seed = kc.BASE_SEED
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kill-campaign-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    os.environ["BATCHINFER_CACHE"] = str(cache)  # the in-process (final) runs use it too
    started = time.monotonic()
    model = build_tiny_classifier(work / "tiny-classifier")
    campaign_root = work / "campaign"
    shutil.rmtree(campaign_root, ignore_errors=True)
    campaign = kc.build_campaign(campaign_root, model, cache)
    print(f"kill campaign: seed {seed}, work folder {work}")
    print(f"clean run: {campaign.seconds:.2f} s from process start, plan.json at {campaign.open_seconds:.2f} s, "
          f"_SUCCESS at {campaign.success_seconds:.2f} s; {campaign.original.units()} units, "
          f"{len(campaign.original.ids)} rows ({campaign.fixed.units()} units, {len(campaign.fixed.ids)} rows "
          f"after the fix)", flush=True)

    if args.only:
        plan = []
        for name in args.only:
            kind, index = name.rsplit("-", 1)
            plan.append(("fix" if kind == "fix_and_resume" else "kill", int(index)))
    else:
        pick = random.Random(f"{seed}:kinds")
        counts = Counter()
        plan = []
        for _ in range(args.trials):
            kind = "fix" if pick.random() < args.fix_share else "kill"
            plan.append((kind, counts[kind]))
            counts[kind] += 1

    failed, tags, signals, moments, outcomes = [], Counter(), Counter(), Counter(), Counter()
    for n, (kind, index) in enumerate(plan, start=1):
        folder = work / f"{kind}-{index}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        run = kc.fix_and_resume_trial if kind == "fix" else kc.random_kill_trial
        t0 = time.monotonic()
        try:
            trial = run(campaign, folder, index, base_seed=seed)
        except Exception as exc:  # noqa: BLE001 - a trial that cannot even run is a failure to report
            trial = kc.Trial(f"{'fix_and_resume' if kind == 'fix' else 'random_kills'}-{index}",
                             f"{seed}:{kind}:{index}", problems=[f"[crash] {type(exc).__name__}: {exc}"])
        seconds = time.monotonic() - t0
        counted = [p for p in trial.problems if not any(p.startswith(f"[{tag}]") for tag in args.ignore)]
        for problem in trial.problems:
            tags[problem[1:problem.index("]")] if problem.startswith("[") else "other"] += 1
        for kill in trial.kills:
            signals[kc.SIGNALS[kill.sig]] += 1
            moments[kill.moment[0]] += 1
            total = (campaign.fixed if kind == "fix" else campaign.original).units()
            if kill.sent_at is None:
                outcomes["run ended before the kill"] += 1
            elif kill.committed_after == kill.committed_before and kill.committed_after in (0, total):
                outcomes["killed before writing (or after the last unit)"] += 1
            else:
                outcomes["killed while writing units"] += 1
        kills = "; ".join(k.describe() for k in trial.kills)
        verdict = "FAIL" if counted else ("ok (ignored: " + ", ".join(sorted({p[1:p.index("]")] for p in
                                                                              trial.problems})) + ")"
                                          if trial.problems else "ok")
        print(f"[{n}/{len(plan)}] {trial.name} {seconds:.1f}s {verdict}: {kills}", flush=True)
        if counted:
            failed.append(trial)
            print(trial.report(), flush=True)
        elif not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    print()
    print(f"summary: {len(plan)} trials in {time.monotonic() - started:.0f} s, {len(failed)} failed "
          f"(seed {seed}{', ignoring ' + ', '.join(args.ignore) if args.ignore else ''})")
    print("  kills by signal: " + ", ".join(f"{k} {v}" for k, v in signals.most_common()))
    print("  kills by moment: " + ", ".join(f"{k} {v}" for k, v in moments.most_common()))
    print("  where they landed: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    if tags:
        print("  problems by tag (all trials): " + ", ".join(f"[{k}] {v}" for k, v in tags.most_common()))
    for trial in failed:
        print(f"  FAILED {trial.name}: replay with --seed {seed} --only {trial.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
