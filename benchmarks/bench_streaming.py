"""Training from image files on disk: peak memory vs the collection's size, and the data
pipeline's speed against a ResNet-18 training step.

Generates ``--n-images`` JPEGs of 224 x 224 in the Fitzpatrick17k layout, then

1. in a fresh process per size, fits ``NIRClassifier(backbone="small_cnn")`` for one epoch on
   :class:`fairskl.datasets.ImageFiles` of the first 2,000 and of all the images (224 px,
   decoded in 2 DataLoader workers) and reads the peak resident memory of the process and of
   its workers. Targets: under 2 GB, and growing by less than 10% from 2,000 images to all;
2. times the DataLoader alone (decode + resize, 2 workers) and a ResNet-18 training step at
   224 px (forward + backward + Adam, 2 threads), in images per second. Target: the pipeline
   delivers images faster than the step consumes them (ratio >= 1).

    python benchmarks/bench_streaming.py [--n-images 10000] [--batches 8]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, resource, sys
import numpy as np
from fairskl import NIRClassifier
from fairskl.datasets import ImageFiles, load_fitzpatrick17k
home, n = sys.argv[1], int(sys.argv[2])
data = load_fitzpatrick17k(data_home=home, image_size=224, return_paths=True)
y = np.arange(n) % 2
files = ImageFiles(data.images[:n], image_size=224)
NIRClassifier("small_cnn", lambda_nir=0.1, max_epochs=1, batch_size=64, verbose=0,
              iterator_train__num_workers=2, random_state=0).fit(files, y)
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"self_mb": self_kb / 1024, "worker_mb": children_kb / 1024}))
"""


def peak_memory(home, n):
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, home, str(n)], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - t0
    return result


def pipeline_rate(paths, n_batches, batch_size=32):
    from torch.utils.data import DataLoader

    from fairskl.datasets import ImageFiles

    loader = DataLoader(ImageFiles(paths, image_size=224), batch_size=batch_size,
                        num_workers=2, shuffle=True)
    batches = iter(loader)
    next(batches)  # start the workers
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(batches)
    return n_batches * batch_size / (time.perf_counter() - t0)


def step_rate(n_batches, batch_size=16):
    import torch
    from torchvision.models import resnet18

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = resnet18(num_classes=2)
    optimizer = torch.optim.Adam(model.parameters())
    X = torch.rand(batch_size, 3, 224, 224)
    y = torch.randint(0, 2, (batch_size,))

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()

    step()  # warm up
    t0 = time.perf_counter()
    for _ in range(n_batches):
        step()
    return n_batches * batch_size / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=10000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()

    from fairskl.datasets import load_fitzpatrick17k
    from fairskl.datasets._fixtures import write_fitzpatrick17k

    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        write_fitzpatrick17k(home, args.n_images, shape=(224, 224), n_distinct=200,
                             random_state=0)
        print(f"generated {args.n_images} JPEGs of 224x224 in {time.perf_counter() - t0:.1f} s",
              flush=True)
        paths = load_fitzpatrick17k(data_home=home, image_size=224, return_paths=True).images
        pipeline = pipeline_rate(paths, args.batches)
        step = step_rate(args.batches)
        print(f"data pipeline (2 workers): {pipeline:.0f} images/s; ResNet-18 step at 224 px "
              f"(2 threads): {step:.1f} images/s", flush=True)
        print(f"ratio pipeline_vs_resnet18_step = {pipeline / step:.1f} (target >= 1)",
              flush=True)
        peaks = {}
        for n in (args.small, args.n_images):
            peaks[n] = peak_memory(home, n)
            print(f"1-epoch fit on {n} files: peak RSS {peaks[n]['self_mb']:.0f} MB (workers "
                  f"{peaks[n]['worker_mb']:.0f} MB each at most), {peaks[n]['seconds']:.0f} s",
                  flush=True)
    largest = peaks[args.n_images]["self_mb"]
    growth = largest / peaks[args.small]["self_mb"]
    print(f"ratio peak_rss_gb = {largest / 1024:.2f} (target <= 2.0)")
    print(f"ratio rss_growth_{args.small}_to_{args.n_images} = {growth:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
