"""fp32 products on CPU: PyTorch's BLAS against oneDNN (recexp.runtime.gemm), on the shapes recexp runs.

    OMP_NUM_THREADS=1 python bench/bench_gemm.py

For each shape (M x K) @ (K x N): GFLOP/s of ``F.linear`` / ``@`` (the BLAS PyTorch was built
with: MKL in the x86 wheels), of oneDNN with the weight as it lies (``recexp.runtime.gemm.mm_nt``) and with
the weight packed once (``recexp.runtime.gemm.pack``), and the ratios to BLAS, measured in this process
(median of 7 timed repeats after one warm-up, process CPU time). Also whether the products are
bit-identical. Prints the BLAS build and the CPU flags that decide MKL's kernels.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from recexp.runtime import gemm  # noqa: E402
from recexp.runtime.malloc import keep_freed_memory  # noqa: E402

# (what, M, K, N): x (M, K) @ w (N, K).T
SHAPES = [
    ("square 2048", 2048, 2048, 2048),
    ("ranking tile: 128 queries x 4,096 items", 128, 64, 4096),
    ("SASRec qkv, 8,192 positions", 8192, 64, 192),
    ("SASRec FFN in, 8,192 positions", 8192, 64, 256),
    ("SASRec FFN out, 8,192 positions", 8192, 256, 64),
    ("fused CE logits: 128 targets x 12,101 items", 128, 64, 12101),
    ("fused CE d/dh: (128 x 12,101) @ items", 128, 12101, 64),
]


def gflops(fn, flop: float, repeats: int = 7) -> float:  # noqa: ANN001
    fn()
    times = []
    for _ in range(repeats):
        c = time.process_time()
        fn()
        times.append(time.process_time() - c)
    return flop / statistics.median(times) / 1e9


def main() -> None:
    keep_freed_memory()
    cfg = torch.__config__.show()
    blas = next((line.strip() for line in cfg.splitlines() if "Math Kernel" in line or "BLAS_INFO" in line), "?")
    flags = sorted(f for f in open("/proc/cpuinfo").read().split() if f.startswith("avx512")) if Path(
        "/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?") if Path("/proc/cpuinfo").exists() else "?"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU {cpu}; {blas}")
    print(f"AVX-512 flags: {' '.join(sorted(set(flags))) or 'none'}; oneDNN route usable: {gemm.onednn_fp32()}")
    if not gemm.onednn_fp32():
        return
    print(f"\n{'shape':46} {'BLAS':>7} {'oneDNN':>7} {'packed':>7} {'ratio':>6} {'packed':>7}  identical")
    g = torch.Generator().manual_seed(0)
    for what, M, K, N in SHAPES:
        x, w = torch.randn(M, K, generator=g), torch.randn(N, K, generator=g)
        reps = max(1, int(2e9 // (2 * M * K * N)))
        flop = 2.0 * M * K * N * reps
        packed = gemm.pack(w, M)
        a = gflops(lambda: [F.linear(x, w) for _ in range(reps)], flop)  # noqa: B023
        b = gflops(lambda: [gemm.mm_nt(x, w) for _ in range(reps)], flop)  # noqa: B023
        c = gflops(lambda: [gemm.mm_nt(x, packed) for _ in range(reps)], flop)  # noqa: B023
        same = torch.equal(F.linear(x, w), gemm.mm_nt(x, w))
        print(f"{what:46} {a:7.1f} {b:7.1f} {c:7.1f} {b / a:5.2f}x {c / a:6.2f}x  {same}")
    print("\nGFLOP/s (process CPU time); ratio = oneDNN / BLAS")


if __name__ == "__main__":
    main()
