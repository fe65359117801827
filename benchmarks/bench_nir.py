"""Per-epoch fit time of NIRClassifier vs the same network without the penalty, side by side.

Three fits of the same ResNet-18 on the same synthetic images, interleaved and repeated:
NIRClassifier(lambda_nir=0.1), NIRClassifier(lambda_nir=0) and a plain skorch
NeuralNetClassifier whose module returns the logits only. Targets: NIR overhead <= 5%.

Then precision="bf16" (torch autocast) against float32 on ResNet-18 at 64x64: per-epoch time and
held-out AUC after the same training. Target: speed-up >= 1.2 with the AUC within noise. Only
where the device computes in bfloat16 natively (CUDA with bf16, a CPU with AVX512-BF16 or AMX):
elsewhere autocast emulates it, 16-20x slower than float32, and the comparison is skipped with a
line saying why (``--bf16 on`` runs it anyway). Each ratio line prints as soon as it is measured.

    python benchmarks/bench_nir.py [--n-samples 1000] [--image-size 32] [--repeats 5] [--bf16 auto]
"""

import os

# Idle OpenMP threads sleep instead of spinning (libgomp reads this once, as torch loads it): on a
# CPU shared with other processes, spinning threads made each epoch 12x slower (2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from skorch import NeuralNetClassifier
from torch import nn

from fairskl import NIRClassifier
from fairskl._backbones import build_network
from fairskl.datasets import make_skin_lesions


class LogitsOnly(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, X):
        return self.net(X)[0]


def native_bf16(device):
    """``(True, "")`` where ``device`` computes in bfloat16 natively, else ``(False, why)``."""
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, ""
        return False, f"{torch.cuda.get_device_name(device)} has no native bfloat16"
    if device.type != "cpu":
        return False, f"native bfloat16 on {device.type} is not checked here"
    try:  # Linux: x86 flags avx512_bf16 (Cooper Lake and later) and amx_bf16, Arm's bf16
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False, "no /proc/cpuinfo to read the CPU's bfloat16 flags from"
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return True, ""
    return False, ("this CPU has no native bfloat16 (no avx512_bf16, amx_bf16 or bf16 flag in "
                   "/proc/cpuinfo): autocast would emulate it, 16-20x slower than float32")


def epoch_times(net, X, y):
    net.fit(X, y)
    return [row["dur"] for row in net.history]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                        help="auto: only where the device computes in bfloat16 natively")
    args = parser.parse_args()

    data = make_skin_lesions(args.n_samples, args.image_size, bias=2.0, random_state=0)
    X, y = data.images, data.target
    torch.manual_seed(0)
    network = build_network("resnet18", weights=None, input_shape=X.shape[1:], n_classes=2)
    common = dict(max_epochs=args.epochs, batch_size=64, lr=1e-3, device=args.device, verbose=0)
    makers = {
        "nir_lambda_0.1": lambda: NIRClassifier(copy.deepcopy(network), lambda_nir=0.1, **common),
        "nir_lambda_0": lambda: NIRClassifier(copy.deepcopy(network), lambda_nir=0.0, **common),
        "plain_skorch": lambda: NeuralNetClassifier(
            LogitsOnly(copy.deepcopy(network)), criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam, train_split=None, iterator_train__shuffle=True,
            **common),
    }
    times = {name: [] for name in makers}
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit all alike
        for name, make in makers.items():
            times[name] += epoch_times(make(), X, y)
    # the fastest epoch: the least disturbed by other processes on a shared machine
    seconds = {name: float(np.min(t)) for name, t in times.items()}
    print(f"ResNet-18, {args.n_samples} images {args.image_size}x{args.image_size}, "
          f"device={args.device}, fastest of {args.repeats} x {args.epochs} epochs:")
    for name, value in seconds.items():
        print(f"  {name:16s} {value:.3f} s")
    nir = seconds["nir_lambda_0.1"]
    print(f"ratio nir_vs_plain_epoch_time = {nir / seconds['plain_skorch']:.3f} (target <= 1.05)")
    print(f"ratio nir_vs_lambda0_epoch_time = {nir / seconds['nir_lambda_0']:.3f} (target <= 1.05)",
          flush=True)
    native, why = native_bf16(args.device)
    if args.bf16 == "on" or (args.bf16 == "auto" and native):
        bf16_vs_float32(args)
    else:
        print(f"bf16_vs_float32 skipped: {why if args.bf16 == 'auto' else '--bf16 off'}")


def bf16_vs_float32(args, n_train=1500, n_test=500, epochs=3):
    data = make_skin_lesions(n_train + n_test, 64, bias=2.0, random_state=1)
    X, y = data.images, data.target
    result = {}
    for precision in ["float32", "bf16"]:
        clf = NIRClassifier("resnet18", precision=precision, max_epochs=epochs, random_state=0,
                            device=args.device, verbose=0).fit(X[:n_train], y[:n_train])
        auc = roc_auc_score(y[n_train:], clf.predict_proba(X[n_train:])[:, 1])
        result[precision] = (float(np.min(clf.history[:, "dur"])), auc)
        print(f"  {precision:8s} {result[precision][0]:.2f} s per epoch, held-out AUC {auc:.3f} "
              f"(ResNet-18, {n_train} images 64x64, {epochs} epochs)", flush=True)
    speedup = result["float32"][0] / result["bf16"][0]
    print(f"  AUC difference bf16 - float32: {result['bf16'][1] - result['float32'][1]:+.3f}")
    print(f"ratio bf16_vs_float32_speedup = {speedup:.3f} (target >= 1.2)", flush=True)


if __name__ == "__main__":
    main()
