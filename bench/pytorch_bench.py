"""PyTorch CPU side of `deno task bench`: the same rows as wgtorch's, timed the same way.

Training: the study's models, Adam (lr 0.01), NLL loss, random inputs in [0, 1) and labels
i % 10; warm-up steps, then timed windows of about `target_ms` each, images per second as the
median over the windows. Evaluation: forward only in eval mode under torch.no_grad().

Usage: python3 pytorch_bench.py '{"rows": [{"kind": "train", "model": "cnn", "batch": 32}, ...],
"windows": 5, "threads": 2}'  -- prints one JSON object on stdout. The bench runs it once per
row, right after wgtorch's run of that row, so that both see the machine in the same state.
"""

import json
import os
import re
import sys
import time

import torch
from torch import nn


def mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10), nn.LogSoftmax(dim=1))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(10, 20, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(320, 10), nn.LogSoftmax(dim=1))


def cnn_bn():
    return nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.BatchNorm2d(10), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(10, 20, 5), nn.BatchNorm2d(20), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(320, 10), nn.LogSoftmax(dim=1))


MODELS = {"mlp": mlp, "cnn": cnn, "cnn-bn": cnn_bn}


def time_steps(step, batch, warmup, windows, target_ms):
    """Images per second: median of `windows` windows, after `warmup` steps (as bench/mod.ts)."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    once_ms = (time.perf_counter() - t0) * 1000
    steps = max(2, min(500, round(target_ms / max(once_ms, 1e-3))))
    rates = []
    cpu_ms = 0.0
    for _ in range(windows):
        c0 = time.process_time()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
        cpu_ms += (time.process_time() - c0) * 1000 / steps
        rates.append(batch * steps / seconds)
    rates_sorted = sorted(rates)
    mid = len(rates_sorted) // 2
    median = rates_sorted[mid] if len(rates_sorted) % 2 else (
        rates_sorted[mid - 1] + rates_sorted[mid]) / 2
    return {"imagesPerSecond": median, "windows": rates, "cpuMsPerStep": cpu_ms / windows}


def train_throughput(name, batch, windows):
    torch.manual_seed(0)
    model = MODELS[name]().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.arange(batch) % 10
    loss_fn = nn.NLLLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return time_steps(step, batch, warmup=3, windows=windows, target_ms=1500)


def eval_throughput(name, batch, windows):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.rand(batch, 1, 28, 28)

    def step():
        with torch.no_grad():
            model(x)

    return time_steps(step, batch, warmup=2, windows=windows, target_ms=1000)


def blas_library():
    """The BLAS shared library this process actually loaded (after a matmul), e.g. OpenBLAS."""
    torch.mm(torch.rand(64, 64), torch.rand(64, 64))
    found = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if re.search(r"(openblas|libblas|mkl|blis|atlas)", name, re.IGNORECASE):
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec["threads"]))
    rows = []
    for row in spec["rows"]:
        kind, name, batch = row["kind"], row["model"], int(row["batch"])
        measure = train_throughput if kind == "train" else eval_throughput
        rows.append({"what": f"{kind} {name} batch {batch}",
                     **measure(name, batch, spec["windows"])})
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_library(),
        "rows": rows,
    }))


if __name__ == "__main__":
    main()
