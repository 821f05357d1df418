"""Is what --explain says was chosen what was built? For each model, with the cost model alone and after
--tune into a fresh tuning cache: the convs whose last choice equals the kernel built from their plan.

    .venv/bin/python benchmarks/built_as_chosen.py resnet50 mobilenet_v2 --tune-budget 3m

A compile for a target runs select-conv-algorithms, assign-layouts, then select-conv-algorithms
again within each conv's layout; the kernels are built from the backend's plans, and `built`
is read off those plans (selection/explain.py), so a mismatch would show a pass or the lowering
overriding a choice. Also prints how many choices were measured rather than estimated.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cnncompile.api import compile as compile_model
from cnncompile.selection.explain import choices_as_json
from cnncompile.selection.select import ChoiceSource
from cnncompile.tuning.budget import parse_duration
from cnncompile.tuning.tuner import TuningOptions


def report(label: str, model) -> str:
    choices = choices_as_json(model.choices, model.kernels)
    same = sum(c["chosen"] == c["built"] for c in choices)
    measured = sum(c.source is ChoiceSource.MEASURED for c in model.choices)
    differing = [f"{c['node']}: chosen {c['chosen']}, built {c['built']}" for c in choices if c["chosen"] != c["built"]]
    return "\n".join([f"  {label:<22} {same}/{len(choices)} built as chosen, {measured} measured", *differing])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["resnet50", "mobilenet_v2"])
    parser.add_argument("--tune-budget", default="3m", help="per model, e.g. 90s or 3m")
    args = parser.parse_args()
    budget = parse_duration(args.tune_budget)
    for name in args.models:
        print(f"{name}:")
        print(report("cost model", compile_model(f"zoo:{name}", "llvm", "O3")))
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            tuned = compile_model(f"zoo:{name}", "llvm", "O3",
                                  tuning=TuningOptions(Path(scratch) / "tuning.json", budget_seconds=budget))
            print(report(f"tuned ({time.perf_counter() - start:.0f} s)", tuned))


if __name__ == "__main__":
    main()
