"""Summarise a mutation run: per module, how many of mutmut's mutants the tests killed.

    make mutation            # mutmut run over the modules in pyproject.toml's [tool.mutmut], then this
    python benchmarks/mutation_summary.py [--out benchmarks/mutation.md]

Reads ``mutants/**/*.py.meta`` (mutmut 3's record of each mutant's test exit code) and
``benchmarks/mutation-equivalent.md``, the survivors a reviewer judged equivalent (no observable
behaviour changes), each with the changed line and a reason. A listed survivor counts as
"equivalent" only while its current diff still adds that line, so an entry goes stale, and is
reported, when the code under it changes. Entries whose reason starts "CUDA only" are not
equivalent: they change behaviour only on a CUDA device, and mutation runs on CPU.
``mutmut show NAME`` prints a mutant's diff.

    killed % = killed / (mutants that ran - equivalent - CUDA only)
    caught % = (killed + timeout) / (mutants that ran - equivalent - CUDA only)

"no tests": no test in the mutation run covers the mutated function; "timeout": the mutant ran past
its CPU-time limit (a hang the suite would meet too: caught, but not by a failing assertion).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
from collections import Counter

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", None: "not run"}
EQUIVALENT = pathlib.Path(__file__).with_name("mutation-equivalent.md")
KINDS = ["killed", "equivalent", "CUDA only", "survived", "no tests", "timeout", "not run"]


def equivalents(path: pathlib.Path = EQUIVALENT) -> dict[str, tuple[str, str]]:
    """``{mutant name: (changed line, reason)}`` from the table rows ``| name | `line` | reason |``."""
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 3 and "__mutmut_" in cells[0]:
            out[cells[0]] = (cells[1].strip("`"), cells[2])
    return out


def added_lines(name: str, module: str) -> list[str]:
    """The lines the mutant adds, stripped, from mutmut's own diff."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    diff = get_diff_for_mutant(name, path=module)
    return [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]


def summary(root: pathlib.Path = pathlib.Path("mutants")) -> tuple[str, list[str], list[str]]:
    """(the table, unexplained survivors, stale equivalent entries)."""
    judged = equivalents()
    rows, survivors, seen = [], [], set()
    total = Counter()
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to(root))[:-len(".meta")]
        count = Counter()
        for name, code in sorted(codes.items()):
            kind = STATUS.get(code, "suspicious")
            if kind == "survived" and name in judged and judged[name][0] in added_lines(name, module):
                kind = "CUDA only" if judged[name][1].startswith("CUDA only") else "equivalent"
                seen.add(name)
            elif kind in ("survived", "no tests"):
                survivors.append(name)
            count[kind] += 1
        total.update(count)
        rows.append((module, count))
    rows.append(("**all**", total))
    lines = ["| module | mutants | " + " | ".join(KINDS) + " | killed % | caught % | killed % of all run |",
             "|---" * (len(KINDS) + 5) + "|"]
    for module, c in rows:
        counted = sum(c.values()) - c["not run"] - c["equivalent"] - c["CUDA only"]
        ran = sum(c.values()) - c["not run"]
        pct = (f"{100 * c['killed'] / counted:.1f} | {100 * (c['killed'] + c['timeout']) / counted:.1f} | "
               f"{100 * c['killed'] / ran:.1f}" if counted else "- | - | -")
        lines.append(f"| {module} | {sum(c.values())} | " + " | ".join(str(c[k]) for k in KINDS) + f" | {pct} |")
    return "\n".join(lines) + "\n", survivors, sorted(set(judged) - seen)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    table, survivors, stale = summary()
    text = ("# Mutation testing\n\n`make mutation` (mutmut; modules and tests in pyproject.toml's `[tool.mutmut]`).\n"
            "killed % = killed / (mutants run − equivalent − CUDA only); caught % also counts timeouts. The "
            f"equivalent survivors, each with its reason, are in `{EQUIVALENT.name}`; \"CUDA only\" mutants change "
            "behaviour only on a CUDA device, and the run is on CPU. The last column counts every survivor "
            "against the tests.\n\nThe figures are mutmut's record in `mutants/`: `make mutation` starts it afresh, "
            "and `mutmut run NAME...` reruns chosen mutants against the current tests (a killed mutant keeps its "
            "verdict while its function is unchanged). Functions marked `# pragma: no mutate` are not counted.\n\n"
            + table
            + f"\n{len(survivors)} unexplained survivors" + (": " + ", ".join(survivors) if survivors else "")
            + ".\n" + (f"\nStale equivalent entries (killed, gone, or changed): {', '.join(stale)}\n" if stale else ""))
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
