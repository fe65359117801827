"""GPU training throughput: NIR vs plain ERM, float32 vs bf16/fp16, data pipeline vs training step.

On one CUDA GPU, with a torchvision ResNet-18 (random weights) at 224 px:

1. ``NIRClassifier(lambda_nir=0.1)`` against the same network without the penalty
   (``lambda_nir=0``, plain ERM), at each precision the GPU and the classifier support
   (float32; ``"bf16"`` where the GPU computes in bfloat16 natively; ``"fp16"`` where the
   classifier offers it), in training images/s (fastest epoch of interleaved repeats, in-memory
   images). Targets: NIR costs <= 5% (ratio of epoch times <= 1.05); mixed precision speeds an
   epoch up >= 1.5x.
2. The data pipeline alone: generated 450x600 JPEGs (HAM10000's size) decoded and resized to
   224 px by :class:`fairskl.datasets.ImageFiles` in DataLoader workers, pinned and copied to the
   GPU, in images/s, against the fastest training step of part 1. Target: the pipeline delivers
   images at least as fast as the step consumes them (ratio >= 1).

Each ratio line prints as soon as it is measured. On a machine without a CUDA GPU it prints one
line saying so and exits with status 0 (``--device cpu`` runs it anyway, to check the script on
small sizes).

    python benchmarks/bench_gpu.py [--n-images 2048] [--repeats 2] [--num-workers 8]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from fairskl import NIRClassifier
from fairskl.datasets import ImageFiles, make_skin_lesions
from fairskl.datasets._fixtures import write_images


def training_rates(args, X, y):
    """Fastest-epoch images/s per (precision, lambda_nir); skipped precisions print why."""
    precisions = ["float32"]
    if not args.cuda or torch.cuda.is_bf16_supported(including_emulation=False):
        precisions.append("bf16")
    else:
        print(f"bf16 skipped: {torch.cuda.get_device_name()} has no native bfloat16")
    precisions.append("fp16")
    common = dict(backbone="resnet18", max_epochs=args.epochs, batch_size=args.batch_size,
                  lr=1e-3, device=args.device, random_state=0, verbose=0)
    durations = {}
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit all alike
        for precision in list(precisions):
            for lam in (0.1, 0.0):
                try:
                    clf = NIRClassifier(lambda_nir=lam, precision=precision, **common).fit(X, y)
                except ValueError as error:
                    if "precision" not in str(error):
                        raise
                    print(f"{precision} skipped: {error}", flush=True)
                    precisions.remove(precision)
                    break
                durations.setdefault((precision, lam), []).extend(clf.history[1:, "dur"])
    # the first epoch warms up (cuDNN's algorithm search, the allocator); fastest of the rest
    return {key: len(X) / min(values) for key, values in durations.items()}


def pipeline_rate(paths, args):
    """Images/s of decode + resize (ImageFiles) in DataLoader workers, pinned, copied to GPU."""
    files = ImageFiles(paths, image_size=args.image_size)
    loader = DataLoader(files, batch_size=args.batch_size, shuffle=True,
                        num_workers=args.num_workers, pin_memory=args.cuda,
                        persistent_workers=args.num_workers > 0)
    for batch, _ in loader:  # one epoch to start the workers and warm the page cache
        batch.to(args.device, non_blocking=True)
    start, n = time.perf_counter(), 0
    for batch, _ in loader:
        n += len(batch.to(args.device, non_blocking=True))
    if args.cuda:
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--n-files", type=int, default=2048, help="JPEGs for the pipeline")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch warms up and is not timed")
    args.cuda = torch.device(args.device).type == "cuda"
    if args.cuda and not torch.cuda.is_available():
        print("bench_gpu: skipped, no CUDA GPU on this machine (torch.cuda.is_available() is "
              "False); run it on a machine with one, or with --device cpu to check the script.")
        sys.exit(0)
    name = torch.cuda.get_device_name(args.device) if args.cuda else args.device
    print(f"torch {torch.__version__}, {name}, ResNet-18 (random weights), "
          f"{args.image_size}x{args.image_size}, batch {args.batch_size}", flush=True)

    # 1. NIR vs ERM at each precision: distinct pictures, tiled to n_images
    data = make_skin_lesions(min(256, args.n_images), args.image_size, bias=2.0, random_state=0)
    tiles = -(-args.n_images // len(data.images))
    X = np.tile(data.images, (tiles, 1, 1, 1))[:args.n_images]
    y = np.tile(data.target, tiles)[:args.n_images]
    rates = training_rates(args, X, y)
    precisions = dict.fromkeys(precision for precision, _ in rates)
    print(f"  training images/s ({args.n_images} in-memory images, fastest of epochs "
          f"2-{args.epochs} x {args.repeats} repeats):")
    for precision in precisions:
        print(f"  {precision:8s} NIR (lambda 0.1) {rates[precision, 0.1]:8.0f}   "
              f"ERM (lambda 0) {rates[precision, 0.0]:8.0f}")
    for precision in precisions:
        overhead = rates[precision, 0.0] / rates[precision, 0.1]
        print(f"ratio nir_vs_erm_epoch_time_{precision} = {overhead:.3f} (target <= 1.05)")
    for precision in precisions:
        if precision != "float32":
            speedup = rates[precision, 0.1] / rates["float32", 0.1]
            print(f"ratio {precision}_vs_float32_speedup = {speedup:.3f} (target >= 1.5)")
    sys.stdout.flush()

    # 2. the data pipeline vs the fastest training step
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        # 64 distinct pictures, their bytes reused: decoding costs the same, writing is fast
        paths = write_images(folder, [f"{i:06d}.jpg" for i in range(args.n_files)],
                             shape=(450, 600), n_distinct=64, random_state=0)
        print(f"  generated {args.n_files} JPEGs of 450x600 in {time.perf_counter() - t0:.1f} s",
              flush=True)
        pipeline = pipeline_rate(paths, args)
    fastest = max(rates, key=rates.get)
    print(f"  data pipeline ({args.num_workers} workers): {pipeline:.0f} images/s; fastest "
          f"training ({fastest[0]}, lambda {fastest[1]}): {rates[fastest]:.0f} images/s")
    print(f"ratio pipeline_vs_training_images_per_s = {pipeline / rates[fastest]:.3f} "
          f"(target >= 1)", flush=True)


if __name__ == "__main__":
    main()
