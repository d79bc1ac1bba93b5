"""Summarise a mutation run: per module, how many of mutmut's mutants the tests killed.

    make mutation            # mutmut run over the modules in pyproject.toml's [tool.mutmut], then this
    python benchmarks/mutation_summary.py [--out benchmarks/mutation.md]

Reads ``mutants/**/*.py.meta`` (mutmut 3's record of each mutant's test exit code) and lists the
surviving mutants by name; ``mutmut show NAME`` prints one's diff. "no tests": no test in the
mutation run covers the mutated function (the end-to-end tests are left out of it: see
pyproject.toml); "timeout": the mutant ran past its CPU-time limit (a hang the tests would meet too).
"""
from __future__ import annotations

import argparse
import json
import pathlib
from collections import Counter

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", None: "not run"}


def summary(root: pathlib.Path = pathlib.Path("mutants")) -> tuple[str, list[str]]:
    rows, survivors = [], []
    total = Counter()
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        count = Counter(STATUS.get(code, "suspicious") for code in codes.values())
        total.update(count)
        module = str(meta.relative_to(root))[:-len(".meta")]
        rows.append((module, count))
        survivors += sorted(k for k, c in codes.items() if STATUS.get(c) in ("survived", "no tests"))
    rows.append(("**all**", total))
    kinds = ["killed", "survived", "no tests", "timeout", "not run"]
    lines = ["| module | mutants | " + " | ".join(kinds) + " | killed % | killed or timed out % |",
             "|---" * (len(kinds) + 4) + "|"]
    for module, c in rows:
        n = sum(c.values())
        ran = n - c["not run"]
        pct = (f"{100 * c['killed'] / ran:.1f} | {100 * (c['killed'] + c['timeout']) / ran:.1f}" if ran else "- | -")
        lines.append(f"| {module} | {n} | " + " | ".join(str(c[k]) for k in kinds) + f" | {pct} |")
    return "\n".join(lines) + "\n", survivors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    table, survivors = summary()
    text = ("# Mutation testing\n\n`make mutation` (mutmut; modules and tests in pyproject.toml's "
            "`[tool.mutmut]`).\n\n" + table + f"\n{len(survivors)} survivors; `mutmut show NAME` prints one.\n")
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
