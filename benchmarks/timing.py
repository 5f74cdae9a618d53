"Timing shared by the benchmarks: each compares two implementations measured in the same run."
import time


def timed(fn, repeat):
    "Best wall time of `repeat` runs of `fn`, and its last result."
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t0)
    return best, out
