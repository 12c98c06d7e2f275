#!/usr/bin/env python3
"""pymcdm on the matrix the engine bench ranks, for the ratio in BENCHMARKS.md.

Setup (a venv under target/, packages from PyPI):
    python3 -m venv target/pyvenv && target/pyvenv/bin/pip install pandas pymcdm
Run, after the bench wrote the matrix:
    BENCH_MATRIX_CSV=$PWD/target/engine_matrix.csv cargo bench -p zonerank-domain --bench engine
    target/pyvenv/bin/python bench/engine_pymcdm.py target/engine_matrix.csv

Times the same two pipelines as the bench: min-max + fixed weights + weighted sum + ranks, and
vector + entropy weights + TOPSIS + ranks (the bench's weights 1..m and every fourth criterion
a cost). Reading the CSV is not timed. The best of three runs is printed.
"""

import sys
import time

import numpy as np
import pandas as pd
from pymcdm import methods, normalizations, weights
from pymcdm.helpers import rankdata


def best_of(runs, fn):
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "target/engine_matrix.csv"
    matrix = pd.read_csv(path).to_numpy(dtype=float)
    n, m = matrix.shape
    types = np.array([-1 if j % 4 == 3 else 1 for j in range(m)])
    fixed = np.arange(1, m + 1, dtype=float)
    fixed /= fixed.sum()

    def wsm():
        scores = methods.WSM(normalization_function=normalizations.minmax_normalization)(
            matrix, fixed, types
        )
        return rankdata(scores, reverse=True)

    def topsis():
        w = weights.entropy_weights(matrix)
        scores = methods.TOPSIS(normalization_function=normalizations.vector_normalization)(
            matrix, w, types
        )
        return rankdata(scores, reverse=True)

    for label, fn in [
        ("min-max + fixed + weighted sum", wsm),
        ("vector + entropy + TOPSIS", topsis),
    ]:
        seconds = best_of(3, fn)
        print(f"pymcdm {n} x {m}, {label:<32} {seconds * 1e3:10.1f} ms")


if __name__ == "__main__":
    main()
