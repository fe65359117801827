"""PerceptualVAE: estimator overhead, achieved FLOP/s, perceptual-loss cost and bf16, side by side.

1. ``PerceptualVAE.fit`` vs a hand-written PyTorch loop over the same module, loss and data
   (fastest epoch of interleaved repeats). Target: ratio <= 1.05.
2. Achieved FLOP/s of one training step (FLOPs counted by ``torch.utils.flop_counter``) as a
   fraction of a 2048×2048 float32 matmul on the same machine. Aim: >= 0.6 on CPU.
3. Training images/s at 64×64 (the study's architecture) with and without the perceptual loss.
4. ``precision="bf16"`` (autocast, channels-last) vs float32 at the study's configuration:
   step-time speed-up (target >= 2) and reconstruction MSE after the same short training
   (target: within 5%). Only where bfloat16 is native (a CPU with AVX512-BF16 or AMX; CUDA with
   bf16 for the fit): elsewhere autocast emulates it, 16-20x slower than float32, and part 4 is
   skipped with a line saying why (``--bf16 on`` runs it anyway).

Each ratio line prints as soon as it is measured.

    python benchmarks/bench_vae.py [--repeats 3] [--device cpu] [--bf16 auto]
"""

import os

# Idle OpenMP threads sleep instead of spinning (libgomp reads this once, as torch loads it): on a
# CPU shared with other processes, spinning threads made each epoch 12x slower (2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from fairskl import PerceptualVAE
from fairskl._perceptual import PerceptualLoss
from fairskl._vae import ResidualVAE
from fairskl.datasets import make_skin_lesions

warnings.filterwarnings("ignore", message="perceptual_weights=None")


def vae_loss(module, criterion, x, beta=1.0, weight=1.0):
    reconstruction, mu, log_var = module(x)
    kl = -0.5 * torch.mean(1 + log_var - mu.pow(2) - log_var.exp())
    loss = F.mse_loss(reconstruction, x) + beta * kl
    if weight:
        loss = loss + weight * criterion(reconstruction, x)
    return loss


def hand_written_epochs(module, criterion, X, batch_size, lr, n_epochs):
    """Seconds of each epoch of plain PyTorch: shuffled batches, Adam, the same loss."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    X = torch.as_tensor(X) * 2 - 1
    module.train()
    seconds = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        for index in torch.randperm(len(X)).split(batch_size):
            optimizer.zero_grad()
            vae_loss(module, criterion, X[index]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def step_seconds(module, criterion, x, precision="float32", repeats=3, weight=1.0):
    """Fastest of ``repeats`` training steps (after one warm-up step)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = vae_loss(module, criterion, x, weight=weight)
        optimizer.zero_grad()
        loss.float().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                        help="auto: only where bfloat16 is native (the steps of part 4 run on "
                             "the CPU, its fits on --device)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device={args.device}")

    # 1. estimator vs hand-written loop: 64x64, small width, perceptual loss on
    # at 32x32 (4 batches per epoch, about 1 s per batch) so that the fastest of 6 epochs per
    # side is a stable estimate; a 64x64 batch takes 5 s and varies by +-20% on a shared CPU
    X = make_skin_lesions(256, 32, random_state=0).images
    arch = dict(latent_channels=16, channel_width=16, n_stages=2)
    module = ResidualVAE(3, **arch)
    criterion = PerceptualLoss(None)
    criterion.features  # noqa: B018 - built once, outside the timings
    times = {"PerceptualVAE.fit": [], "hand-written loop": []}
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        vae = PerceptualVAE(**arch, max_epochs=4, batch_size=64, random_state=0, verbose=0,
                            gradient_clip_norm=None,  # the hand-written loop does not clip
                            device=args.device).fit(X)
        times["PerceptualVAE.fit"] += vae.history[1:, "dur"]  # the first epoch warms up
        times["hand-written loop"] += hand_written_epochs(
            copy.deepcopy(module), criterion, X, 64, 1e-4, n_epochs=4)[1:]
    seconds = {name: float(np.min(t)) for name, t in times.items()}
    for name, value in seconds.items():
        print(f"  {name:20s} {value:.3f} s per epoch (256 images 32x32, channel_width=16, "
              f"perceptual on; fastest of epochs 2-4 x {args.repeats} repeats)")
    overhead = seconds["PerceptualVAE.fit"] / seconds["hand-written loop"]
    print(f"ratio fit_vs_hand_written_loop = {overhead:.3f} (target <= 1.05)", flush=True)

    # 2. achieved FLOP/s of a training step vs a 2048x2048 matmul
    x = torch.as_tensor(make_skin_lesions(32, 64, random_state=0).images) * 2 - 1
    study = ResidualVAE(3, latent_channels=64, channel_width=64, n_stages=3)
    counter = FlopCounterMode(display=False)
    with counter:
        vae_loss(study, criterion, x).backward()
    flops = counter.get_total_flops()
    step = step_seconds(study, criterion, x, repeats=args.repeats)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul = min(_timed(lambda: a @ b) for _ in range(10))
    peak = 2 * 2048**3 / matmul
    print(f"  training step (study config, 32 images 64x64, perceptual on): "
          f"{flops / 1e9:.0f} GFLOP in {step:.2f} s = {flops / step / 1e9:.0f} GFLOP/s; "
          f"2048x2048 matmul: {peak / 1e9:.0f} GFLOP/s")
    fraction = flops / step / peak
    print(f"ratio training_step_flops_vs_matmul = {fraction:.3f} (target >= 0.6)", flush=True)

    # 3. images/s with and without the perceptual loss (study config, float32)
    speed = {1.0: len(x) / step}
    speed[0.0] = len(x) / step_seconds(study, criterion, x, repeats=args.repeats, weight=0.0)
    print(f"  images/s at 64x64 (study config, float32): without perceptual {speed[0.0]:.1f}, "
          f"with perceptual {speed[1.0]:.1f} ({speed[1.0] / speed[0.0]:.2f}x)", flush=True)

    # 4. bf16 vs float32 at the study's configuration, where bfloat16 is native
    if args.bf16 == "auto":  # the steps run on the CPU, the fits on --device
        checks = [native_bf16("cpu"), native_bf16(args.device)]
        why = next((reason for native, reason in checks if not native), "")
    else:
        why = "--bf16 off" if args.bf16 == "off" else ""
    if why:
        print(f"bf16_vs_float32 skipped: {why}")
        return
    fp32 = step
    bf16 = step_seconds(study, criterion, x, "bf16", repeats=args.repeats)
    last = copy.deepcopy(study).to(memory_format=torch.channels_last)
    bf16_cl = step_seconds(last, criterion, x.contiguous(memory_format=torch.channels_last),
                           "bf16", repeats=args.repeats)
    print(f"  training step, 32 images: float32 {fp32:.2f} s, bf16 {bf16:.2f} s, "
          f"bf16 + channels_last {bf16_cl:.2f} s")
    print(f"ratio bf16_vs_float32_speedup = {fp32 / bf16:.3f} (target >= 2)", flush=True)
    # the same short training at the study's lr and configuration, float32 vs plain bf16
    # (channels_last was not faster above, and changes the convolutions' rounding)
    data = make_skin_lesions(256, 64, random_state=1).images
    mse = {}
    for precision in ("float32", "bf16"):
        vae = PerceptualVAE(precision=precision, max_epochs=2, batch_size=32, lr=1e-4,
                            random_state=0, verbose=0, device=args.device).fit(data[:128])
        mse[precision] = -vae.score(data[128:])
    print(f"  held-out MSE after 2 epochs on 128 images (lr 1e-4, batch 32): "
          f"float32 {mse['float32']:.5f}, bf16 {mse['bf16']:.5f}")
    deviation = abs(mse["bf16"] / mse["float32"] - 1)
    print(f"ratio bf16_vs_float32_mse_deviation = {deviation:.3f} (target <= 0.05)", flush=True)


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
