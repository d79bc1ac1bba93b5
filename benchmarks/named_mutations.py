"""The hand-made mutations a reviewer tried on the science and durability core, each with the test
that must catch it.

    python benchmarks/named_mutations.py [--out benchmarks/named_mutations.md]

For each mutation: copy the code and tests to a temporary folder, apply the one-line change, run the
named test there, and record whether it failed (caught). The unchanged copy runs every named test
first, which must pass. A mutation whose line is no longer in the code is reported, not skipped.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
COPY = ["study", "analysis", "tests", "docs", "notebooks", "README.md", "REPRODUCTION.md", "pyproject.toml"]

# (what a reviewer changed, file, the original text, the mutated text, the test that must fail)
MUTATIONS = [
    ("parts written straight to their final name (no temp file, no rename)", "study/store/uri.py",
     "    write(tmp)\n    if moment:\n        fault_point(f\"{moment}:written\")\n    fs.move(tmp, dst)\n",
     "    write(dst)\n    if moment:\n        fault_point(f\"{moment}:written\")\n",
     "tests/test_durability.py::test_a_kill_at_each_moment_of_a_write_leaves_whole_parts_and_a_readable_folder"),
    ("the attractor decided by rho at x_i, not at its memory", "study/trial/run.py",
     "attractor = probes.attractors(mem.found, rho_mem, cfg.rho_margin)",
     "attractor = probes.attractors(mem.found, rho, cfg.rho_margin)",
     "tests/test_trial_maps.py::test_the_attractor_is_decided_by_rho_at_the_memory_not_at_the_example"),
    ("no margin below rho = 1", "study/trial/probes.py",
     "return np.asarray(found, bool) & (np.asarray(rho) < 1 - rho_margin)",
     "return np.asarray(found, bool) & (np.asarray(rho) < 1)",
     "tests/test_trial_maps.py::test_a_repelling_or_barely_contracting_fixed_point_is_no_attractor"),
    ("an exactly fixed point that repels is a memory (no points beside x_i)", "study/trial/run.py",
     "mem = probes.memories(lim, x, cfg.memory_tol, cfg.match_tol, probes.MEMORY_CHECKS)",
     "mem = probes.memories(lim, x, cfg.memory_tol, cfg.match_tol, 0)",
     "tests/test_trial_maps.py::test_a_repelling_or_barely_contracting_fixed_point_is_no_attractor"),
    ("iteration stops at iter_steps whatever the contraction", "study/trial/run.py",
     "cfg.confirm_steps, max_total=cfg.iter_max_steps)", "cfg.confirm_steps, max_total=cfg.iter_steps)",
     "tests/test_trial_maps.py::test_a_slow_contraction_is_followed_past_iter_steps_to_its_limit"),
    ("a cycle away from the memories is not spurious", "study/trial/probes.py",
     "kind[limits.converged | cycle] = SPURIOUS", "kind[limits.converged] = SPURIOUS",
     "tests/test_trial_maps.py::test_a_stable_two_cycle_beside_an_example_is_counted_as_a_cycle_and_as_spurious"),
    ("a return to any training example counts as a return to its own", "study/trial/run.py",
     "same = {name: (kind[part[name]] == probes.TRAIN) & (nearest[part[name]] == origins[name]) for name in origins}",
     "same = {name: (kind[part[name]] == probes.TRAIN) for name in origins}",
     "tests/test_trial_maps.py::test_a_map_sending_every_start_to_x0_retrieves_any_memory_but_its_own_only_from_x0"),
    ("a start counts as retrieved without converging", "study/trial/probes.py",
     "kind[limits.converged & near] = TRAIN", "kind[near] = TRAIN",
     "tests/test_probes.py::test_a_start_still_moving_beside_a_memory_is_no_return"),
    ("a sequence trial is probed through f, not f applied n times", "study/trial/run.py",
     'f = probes.compose(model, len(x)) if cfg.task == "sequence" else model', "f = model",
     "tests/test_trial_maps.py::test_a_cyclic_contraction_is_probed_through_f_to_the_n_as_a_sequence_task"),
    ("onset: a rate must exceed the threshold, not reach it", "study/rules.py",
     "reach = tested & (r >= threshold)", "reach = tested & (r > threshold)",
     "tests/test_evidence.py::test_a_rate_of_exactly_the_threshold_is_the_onset"),
    ("a cell short of usable seeds gets a rate as if it had the minimum", "study/rules.py",
     "return np.where(n >= MIN_SEEDS, k / n, np.nan)", "return np.where(n >= 1, k / n, np.nan)",
     "tests/test_evidence.py::test_a_memorizing_cell_short_of_seeds_is_no_onset"),
    ("memorized: the criterion's thresholds are strict", "analysis/maps.py",
     "return (a >= criterion.min_attractor_frac) & (r >= criterion.min_retrieval)",
     "return (a > criterion.min_attractor_frac) & (r > criterion.min_retrieval)",
     "tests/test_maps.py::test_the_criterion_holds_at_exactly_its_thresholds"),
    ("C1: either condition is enough for 'the layer projects onto the span'", "analysis/claims.py",
     "agree = (single.span_input_sensitivity_mean.astype(float) < span_tol) &",
     "agree = (single.span_input_sensitivity_mean.astype(float) < span_tol) |",
     "tests/test_verdicts.py::test_every_claim_reaches_every_status_on_a_planted_table"),
    ("a rise decided on the point difference, not its interval", "analysis/stats.py",
     "if self.low > self.null + _EPS:", "if self.estimate > self.null + _EPS:",
     "tests/test_verdicts.py::test_c2_a_higher_mean_carried_by_one_seed_is_no_rise"),
    ("groups that could not be tested are dropped before the verdict", "analysis/claims.py",
     "clean = len(tested) == n and not any(g.outcome in (NO, AGAINST) for g in tested)",
     "clean = not any(g.outcome in (NO, AGAINST) for g in tested)",
     "tests/test_verdicts.py::test_the_status_of_a_part"),
    ("an activation marked linear that is not", "study/registry.py",
     '"cosid": Activation("cos(x) - x, the PNAS paper\'s non-monotone activation"),',
     '"cosid": Activation("cos(x) - x, the PNAS paper\'s non-monotone activation", linear=True),',
     "tests/test_registry.py::test_an_activation_is_marked_linear_exactly_when_it_is"),
    ("a net wider than its architecture's CPU limit trained as a batch", "study/trial/batched.py",
     "if device.type != \"cuda\" and cfg.width > ARCHS[cfg.arch].max_width_cpu:",
     "if device.type != \"cuda\" and cfg.width > 2 * ARCHS[cfg.arch].max_width_cpu:",
     "tests/test_registry.py::test_the_cpu_batching_limit_is_the_architectures_own"),
    ("C5: stable and unstable cycles swapped", "analysis/claims.py",
     "for s in (True, False))", "for s in (False, True))",
     "tests/test_verdicts.py::test_every_claim_reaches_every_status_on_a_planted_table"),
]


def _copy(dest: pathlib.Path) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def _pytest(where: pathlib.Path, tests: list[str]) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # python -m puts the copy first on sys.path, ahead of the installed package
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=where, env=env, capture_output=True, text=True).returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp) / "base"
        _copy(base)
        if _pytest(base, sorted({m[4] for m in MUTATIONS})) != 0:
            sys.exit("the named tests fail on the unchanged code: fix that first")
        for k, (what, path, old, new, test) in enumerate(MUTATIONS):
            where = pathlib.Path(tmp) / f"m{k}"
            _copy(where)
            source = (where / path).read_text()
            if source.count(old) != 1:
                caught = f"line not found once in {path}"
                ok = False
            else:
                (where / path).write_text(source.replace(old, new))
                code = _pytest(where, [test])
                caught = "caught" if code == 1 else f"NOT caught (pytest exit {code})"
                ok &= code == 1
            rows.append(f"| {what} | `{path}` | `{test.split('::')[1]}` | {caught} |")
            print(rows[-1], flush=True)
            shutil.rmtree(where)
    text = ("# Named mutations\n\n`python benchmarks/named_mutations.py` applies each change a reviewer tried, "
            "one at a time, to a copy of the code, and runs the test that must catch it.\n\n"
            "| mutation | file | test | result |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    if args.out:
        pathlib.Path(args.out).write_text(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
