"""Coverage-guided fuzzing of the ONNX importer with atheris (libFuzzer), bounded in inputs or time.

    .venv/bin/python benchmarks/fuzz_loader.py --runs 20000 --crashes fuzz-crashes/
    .venv/bin/python benchmarks/fuzz_loader.py --seconds 600

Each input is a file's bytes, written as model.onnx beside a weights.bin that an external
initializer may name, and given to `load_model`. It must import or raise a CnnCompileError;
any other exception is a crash: counted, its input written to --crashes (one file per
exception type and place), and fuzzing goes on.

libFuzzer's handlers of deadly signals are off: cnncompile runs onnx's C++ in forked children
(frontends/forked.py) precisely because some models make it abort, and a child inherits the
handlers, which would report the expected death of a child as a crash. A signal that kills
the fuzzer itself ends the run without a summary; its input is the model.onnx left in the
working folder printed at the start.

libFuzzer's own byte mutations rarely survive protobuf decoding, so most inputs come from
a custom mutator that decodes the input (or starts again from the valid model) and applies
tests/frontends/proto_mutations.py, the mutations the hypothesis fuzz test draws. The
cnncompile and onnx modules are instrumented, so libFuzzer keeps the inputs that reach
new code. Prints the number of inputs tried, the outcomes and the crashes; exit status 1
if there was a crash.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "frontends"))  # the shared mutations

with atheris.instrument_imports(include=["cnncompile", "onnx"]):
    import onnx

    from cnncompile.errors import CnnCompileError
    from cnncompile.frontends.load import load_model

from proto_mutations import EXTERNAL_FILE, externalize, mutate, valid_model  # noqa: E402

BYTE_MUTATION_SHARE = 0.2
MAX_LEN = 1 << 14
RSS_LIMIT_MB = 2048  # libFuzzer's default, counted from what the process inherited
DEADLY_SIGNALS = ("segv", "bus", "abrt", "ill", "fpe")


class Fuzzer:
    """The state of one run: where inputs are written, what happened, when to stop."""

    def __init__(self, folder: Path, crashes: Path, runs: int, seconds: float):
        self.folder, self.model = folder, folder / "model.onnx"
        self.crashes = crashes
        self.runs, self.deadline = runs, time.monotonic() + seconds
        self.start = time.monotonic()
        self.outcomes: Counter = Counter()
        self.crash_places: Counter = Counter()

    def test_one(self, data: bytes) -> None:
        self.model.write_bytes(data)
        try:
            load_model(str(self.model))
            self.outcomes["imported"] += 1
        except CnnCompileError as err:
            self.outcomes[type(err).__name__] += 1
        except Exception as err:  # noqa: BLE001 - anything else is what we are looking for
            self.outcomes["CRASH"] += 1
            self._record(data, err)
        if sum(self.outcomes.values()) >= self.runs or time.monotonic() > self.deadline:
            self.finish()

    def _record(self, data: bytes, err: Exception) -> None:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{type(err).__name__} at {Path(frame.filename).name}:{frame.lineno}"
        if not self.crash_places[place]:
            self.crashes.mkdir(parents=True, exist_ok=True)
            name = f"crash-{type(err).__name__}-{hashlib.sha1(data).hexdigest()[:12]}.onnx"
            (self.crashes / name).write_bytes(data)
            print(f"\nCRASH {place}: {str(err)[:200]} -> {self.crashes / name}", flush=True)
        self.crash_places[place] += 1

    def finish(self) -> None:
        tried, elapsed = sum(self.outcomes.values()), time.monotonic() - self.start
        print(f"\nfuzz_loader: {tried} inputs in {elapsed:.0f} s ({tried / max(elapsed, 1e-9):.0f}/s): "
              + ", ".join(f"{name} {n}" for name, n in self.outcomes.most_common()), flush=True)
        print(f"fuzz_loader: {sum(self.crash_places.values())} crashes at {len(self.crash_places)} places"
              + "".join(f"\n  {n} x {place}" for place, n in self.crash_places.most_common()), flush=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.crashes.is_dir() and not any(self.crashes.iterdir()):
            self.crashes.rmdir()
        os._exit(1 if self.crash_places else 0)  # libFuzzer would otherwise go on, and skips cleanup


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """A structured mutation of the decoded input, or now and then libFuzzer's own byte mutation."""
    rng = random.Random(seed)
    if rng.random() < BYTE_MUTATION_SHARE:
        return atheris.Mutate(data, max_size)
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf raises several kinds; start again from the valid model
        model = valid_model()
    if not model.graph.node or rng.random() < 0.05:
        model = valid_model()
    try:
        mutate(model, rng, rng.randint(1, 3))
    except (TypeError, ValueError):  # the input's text is not UTF-8, which protobuf will not copy
        model = valid_model()
        mutate(model, rng, rng.randint(1, 3))
    return model.SerializeToString()[:max_size]


def seed_corpus(folder: Path) -> Path:
    """The valid model, with its Gemm weight inline and kept in weights.bin; weights.bin itself."""
    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "inline.onnx").write_bytes(valid_model().SerializeToString())
    external = valid_model()
    externalize(external, "wg", folder)
    (corpus / "external.onnx").write_bytes(external.SerializeToString())
    assert (folder / EXTERNAL_FILE).exists()
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20000, help="inputs to try (default 20000)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="time bound (default 3600)")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                        help="folder for crashing inputs (default fuzz-crashes/)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's seed (default 1)")
    args, libfuzzer_args = parser.parse_known_args()
    folder = Path(tempfile.mkdtemp(prefix="fuzz_loader."))  # removed by Fuzzer.finish
    corpus = seed_corpus(folder)
    fuzzer = Fuzzer(folder, args.crashes, args.runs, args.seconds)
    args.crashes.mkdir(parents=True, exist_ok=True)
    print(f"fuzz_loader: working in {folder}", flush=True)
    # libFuzzer's memory limit (2 GiB) is on getrusage's peak RSS, which Linux carries across exec: started
    # by a pytest worker that has compiled models for minutes, the fuzzer "used" gigabytes before its first input.
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    argv = [sys.argv[0], f"-seed={args.seed}", f"-max_len={MAX_LEN}", f"-artifact_prefix={args.crashes}{os.sep}",
            f"-rss_limit_mb={inherited_mb + RSS_LIMIT_MB}", *(f"-handle_{signal}=0" for signal in DEADLY_SIGNALS),
            *libfuzzer_args, str(corpus)]
    atheris.Setup(argv, fuzzer.test_one, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
