"""Serving from many threads: one loaded model, called at once from several threads, gives
each caller the outputs a single-threaded run gives, bit for bit (issue 21)."""

import threading

import numpy as np
import pytest

import cnncompile

THREADS, RUNS = 6, 15


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serve") / "resnet18"
    cnncompile.compile("zoo:resnet18", target="llvm", input_shapes={"input": (1, 3, 64, 64)}).save(directory)
    return cnncompile.load(directory)


def test_threads_calling_one_loaded_model_get_the_single_threaded_outputs(resnet18):
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(THREADS)]
    alone = [resnet18.run({"input": x}) for x in inputs]
    start = threading.Barrier(THREADS)
    results: dict[int, list[dict[str, np.ndarray]]] = {}
    failures: list[BaseException] = []

    def serve(index: int) -> None:
        try:
            start.wait()
            results[index] = [resnet18.run({"input": inputs[index]}) for _ in range(RUNS)]
        except BaseException as err:  # reported below, with the thread it happened in
            failures.append(err)

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    for index in range(THREADS):
        assert len(results[index]) == RUNS
        for outputs in results[index]:
            for name, expected in alone[index].items():
                np.testing.assert_array_equal(outputs[name], expected, err_msg=f"thread {index}, output {name}")
    assert resnet18.runner.vms_made > 1, "the calls never overlapped, so nothing concurrent was tested"

