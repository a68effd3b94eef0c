"""TV-Rec's filter: the lag matrix recexp builds against the paper's graph-Fourier form.

    python bench/bench_tvrec_filter.py                    # CPU, batch 256, length 50, d 64, M 32
    python bench/bench_tvrec_filter.py --device cuda --batch 1024

Both compute the same last-position output (tests/unit/test_tvrec.py checks the two forms against
each other). The baseline is the authors' way, measured in the same run: the window right-padded
with K - 1 zeros, moved into the eigenbasis of the directed cycle (complex matrices, eigenvectors
computed once), filtered there, moved back. recexp's: h = c @ Re(B / |B|), gathered into a real
lower-triangular (L, L) matrix, one real matmul. Times are forward + backward through the filter's
parameters and its input (a training step's share), median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recexp.models.tvrec import TimeVariantFilter


def graph_fourier(f: TimeVariantFilter, V: torch.Tensor, Vinv: torch.Tensor, powers: torch.Tensor,
                  x: torch.Tensor) -> torch.Tensor:
    """The paper's form: real(V ((c B) L^T * ...) V^-1 pad(x)), first L rows."""
    B_, L, D = x.shape
    n = V.shape[0]
    B = torch.view_as_complex(f.basis)
    c = torch.cat([f.coef, f.coef.new_zeros(n - L, f.coef.shape[1])])
    H = c.to(torch.complex64) @ (B / B.abs().pow(2).sum(1, keepdim=True).sqrt())
    F = V * (H @ powers.T)
    padded = torch.cat([x, x.new_zeros(B_, n - L, D)], dim=1).to(torch.complex64)
    return torch.real(F @ (Vinv @ padded))[:, :L]


def timed(fn, x: torch.Tensor, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        out = fn(x)
        out.square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])  # the first two warm up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--basis", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    L = args.length
    f = TimeVariantFilter(L, args.basis).to(device)
    n = 2 * L - 1
    A = torch.zeros(n, n)
    A[0, -1] = 1.0
    A[1:, :-1] += torch.eye(n - 1)
    lam, V = torch.linalg.eig(A)
    powers = torch.stack([lam**k for k in range(L + 1)], dim=1).to(device)
    V, Vinv = V.to(device), torch.linalg.inv(V).to(device)
    x = torch.randn(args.batch, L, args.dim, device=device, requires_grad=True)
    x0 = x.detach().clone()
    x0[:, 0] = 0  # a padded first row: the two forms then agree everywhere but row 0's wrapped lag
    ours_out, paper_out = f(x0), graph_fourier(f, V, Vinv, powers, x0)
    err = (ours_out[:, 1:] - paper_out[:, 1:]).abs().max().item()
    paper = timed(lambda z: graph_fourier(f, V, Vinv, powers, z), x, args.repeats, device)
    ours = timed(f, x, args.repeats, device)
    print(f"TV-Rec filter, batch {args.batch}, length {L}, d {args.dim}, M {args.basis}, {device} "
          f"({torch.get_num_threads()} threads), forward + backward, median of {args.repeats}")
    print("| form | ms | ratio to the paper's form |\n|---|---|---|")
    print(f"| graph-Fourier (the paper's, complex) | {paper * 1e3:.2f} | 1.00 |")
    print(f"| lag matrix (recexp, real) | {ours * 1e3:.2f} | {paper / ours:.1f}x faster |")
    print(f"max |difference| of the outputs (rows 1..L-1): {err:.2e}")


if __name__ == "__main__":
    main()
