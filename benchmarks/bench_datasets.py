"""First load (decode + resize + write the cache) vs cached load of Fitzpatrick17k-layout files.

Generates ``--n-images`` JPEG photographs of ``--source-size`` pixels named ``<md5hash>.jpg``
next to a ``fitzpatrick17k.csv`` with the real columns, in a temporary data home, then times
:func:`fairskl.datasets.load_fitzpatrick17k` at ``--image-size``: the first call decodes every
file and writes the cache; the next calls (the best of ``--repeats``) read the cache. Target:
the cached load is at least 10 times faster.

    python benchmarks/bench_datasets.py [--n-images 3000] [--image-size 64] [--n-jobs 2]
"""

import argparse
import tempfile
import time

from fairskl.datasets import load_fitzpatrick17k
from fairskl.datasets._fixtures import write_fitzpatrick17k


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--source-size", type=int, nargs=2, default=(450, 600),
                        metavar=("H", "W"), help="size of the generated photographs")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        # 100 distinct pictures, their bytes reused: decoding costs the same, writing is fast
        write_fitzpatrick17k(home, args.n_images, shape=tuple(args.source_size), n_distinct=100,
                             random_state=0)
        print(f"generated {args.n_images} JPEGs of {args.source_size[0]}x{args.source_size[1]} "
              f"in {time.perf_counter() - t0:.1f} s")
        kw = {"data_home": home, "image_size": args.image_size, "n_jobs": args.n_jobs}

        t0 = time.perf_counter()
        first = load_fitzpatrick17k(**kw)
        t_first = time.perf_counter() - t0
        t_cached = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            cached = load_fitzpatrick17k(**kw)
            t_cached = min(t_cached, time.perf_counter() - t0)
        assert (cached.images == first.images).all()

    shape = "x".join(map(str, first.images.shape))
    print(f"{'':>14} {'seconds':>9} {'images/s':>10}")
    print(f"{'first load':>14} {t_first:9.3f} {args.n_images / t_first:10.0f}")
    print(f"{'cached load':>14} {t_cached:9.3f} {args.n_images / t_cached:10.0f}")
    print(f"images {shape} float32, n_jobs={args.n_jobs}")
    print(f"ratio cached_load_speedup = {t_first / t_cached:.1f} (target >= 10)")


if __name__ == "__main__":
    main()
