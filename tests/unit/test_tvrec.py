"""TV-Rec: the time-variant filter by hand and against the paper's graph-Fourier form, the
orthogonality penalty, causality, padding, gradients and the trainer's use of the penalty."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.losses.full import CrossEntropy
from recexp.models.tvrec import TimeVariantFilter, TVRec, kernel_matrix, ortho_penalty
from recexp.training.parts import build_loss_and_sampler
from recexp.training.trainer import training_loss
from tests.conftest import compose_cfg

N = 30


def _batch(seq: torch.Tensor, targets: torch.Tensor | None = None) -> Batch:
    return Batch(seq=seq, users=torch.zeros(len(seq), dtype=torch.long), times=torch.zeros(seq.shape),
                 targets=targets)


def _model(**kw) -> TVRec:
    torch.manual_seed(0)
    return TVRec(num_items=N, max_len=6, hidden_size=8, ffn_dim=16, dropout=0.0, num_basis=3, **kw).eval()


def test_kernel_matrix_by_hand():
    h = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]])  # (L 3, K + 1 = 4)
    # H[t, s] = h[t, t - s] for s <= t: the item k steps back from t weighs h[t, k]
    assert torch.equal(kernel_matrix(h), torch.tensor([[1.0, 0.0, 0.0], [6.0, 5.0, 0.0], [11.0, 10.0, 9.0]]))


def test_filter_output_by_hand():
    f = TimeVariantFilter(max_len=3, num_basis=1)
    with torch.no_grad():
        f.basis.zero_()
        f.basis[0, :, 0] = torch.tensor([3.0, 4.0, 0.0, 0.0])  # real part; unit-normed: (0.6, 0.8, 0, 0)
        f.coef.copy_(torch.tensor([[10.0], [20.0], [30.0]]))
    x = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [5.0, -2.0]]])  # (1, 3, 2)
    # y_0 = 6 x_0; y_1 = 12 x_1 + 16 x_0; y_2 = 18 x_2 + 24 x_1
    expected = torch.tensor([[[6.0, 12.0], [52.0, 32.0], [162.0, -36.0]]])
    assert torch.allclose(f(x), expected)
    assert torch.allclose(f(x, last_only=True), expected[:, -1:])
    assert torch.allclose(f(x[:, 1:]), torch.tensor([[[36.0, 0.0], [162.0, -36.0]]]))  # rows count from the end


def test_filter_is_the_papers_graph_fourier_filter_except_the_one_wrapped_lag():
    """The paper's H = V ((h L^T) * ...) V^-1 on a directed cycle over the window right-padded with
    K - 1 zeros (computed here with a complex eigendecomposition) is the lag sum, but at position 0
    whose lag K wraps onto the last position: the only entry the causal filter drops."""
    torch.manual_seed(1)
    L, M = 5, 2
    K, n = L, 2 * L - 1
    f = TimeVariantFilter(max_len=L, num_basis=M)
    with torch.no_grad():
        f.basis.normal_()
        f.coef.normal_()
    B = torch.view_as_complex(f.basis.detach().contiguous())  # (M, K + 1)
    Hc = torch.cat([f.coef.detach(), torch.zeros(n - L, M)]).to(torch.complex64) @ (B / B.abs().pow(2).sum(1, keepdim=True).sqrt())
    A = torch.zeros(n, n)
    A[0, -1] = 1.0
    A[1:, :-1] += torch.eye(n - 1)
    lam, V = torch.linalg.eig(A)
    powers = torch.stack([lam**k for k in range(K + 1)], dim=1)  # (n, K + 1)
    paper = torch.real((V * (Hc @ powers.T)) @ torch.linalg.inv(V))[:L, :L]  # (L, L) acting on the real rows
    ours = f.matrix().detach()
    wrapped = torch.zeros(L, L)
    wrapped[0, L - 1] = Hc[0, K].real
    assert torch.allclose(paper, ours + wrapped, atol=1e-4)
    assert torch.equal(ours, ours.tril())  # causal


def test_ortho_penalty_by_hand():
    assert ortho_penalty(torch.eye(3, 5)).item() == pytest.approx(0.0)
    assert ortho_penalty(torch.tensor([[1.0, 0.0], [2.0, 0.0]])).item() == pytest.approx(2.0)  # G = [[1, 1], [1, 1]]
    assert ortho_penalty(torch.tensor([[1.0, 1.0], [1.0, -1.0]])).item() == pytest.approx(0.0)  # orthogonal after norming


def test_causal_last_only_and_padding():
    m = _model()
    seq = torch.tensor([[3, 5, 7, 9, 11, 13]])
    full = m.encode(seq)
    # causal: changing a later item leaves earlier positions alone
    other = seq.clone()
    other[0, 4] = 2
    assert torch.allclose(m.encode(other)[:, :4], full[:, :4], atol=1e-6)
    assert not torch.allclose(m.encode(other)[:, 4:], full[:, 4:], atol=1e-6)
    # left padding does not change real positions; the last-only pass is the full pass's last row
    short = torch.tensor([[9, 11, 13]])
    padded = torch.tensor([[0, 0, 0, 9, 11, 13]])
    assert torch.allclose(m.encode(short), m.encode(padded)[:, -3:], atol=1e-6)
    assert torch.allclose(m.encode(seq, last_only=True)[:, 0], full[:, -1], atol=1e-6)
    assert torch.allclose(m.query(_batch(seq)), full[:, -1], atol=1e-6)
    assert m.score(m.query(_batch(seq))).shape == (1, N + 1)


def test_gradients_reach_every_part_and_the_penalty_reaches_the_basis():
    m = _model(reg_weight=0.1).train()
    seq = torch.tensor([[0, 3, 5, 7, 9, 11]])
    value = training_loss(m, CrossEntropy(num_items=N), None, _batch(seq, torch.tensor([[0, 5, 7, 9, 11, 2]])), None)
    value.backward()
    names = dict(m.named_parameters())
    for name in ["item_emb.weight", "blocks.0.filter.basis", "blocks.1.filter.coef", "blocks.0.ffn.0.weight"]:
        assert names[name].grad is not None and names[name].grad.abs().sum() > 0, name
    assert "pos_emb.weight" not in names
    m.zero_grad()
    m.penalty().backward()
    assert m.blocks[1].filter.basis.grad.abs().sum() > 0


def test_the_trainer_adds_the_penalty():
    batch = _batch(torch.tensor([[0, 3, 5, 7, 9, 11]]), torch.tensor([[0, 5, 7, 9, 11, 2]]))
    plain = _model()
    reg = _model(reg_weight=0.5)
    ce = CrossEntropy(num_items=N)
    expected = training_loss(plain, ce, None, batch, None) + 0.5 * sum(
        b.filter.penalty() for b in reg.blocks)
    assert plain.penalty() is None
    assert torch.allclose(training_loss(reg, ce, None, batch, None), expected)


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="model.num_basis"):
        TVRec(num_items=N, num_basis=0)
    with pytest.raises(ConfigError, match="model.reg_weight"):
        TVRec(num_items=N, reg_weight=-1.0)


# --- the authors' forward, written out here from the paper's graph-Fourier form ---------------------

def _authors_forward(m: TVRec, seq: torch.Tensor) -> torch.Tensor:
    """The last position's output as github.com/yehjin-shin/TV-Rec computes it (dropout off): left-pad
    to max_len, LN(item), padding rows zeroed before each block, the filter applied in the Fourier
    basis of a directed cycle over the window right-padded with K - 1 zeros (wrap included)."""
    L, D = m.max_len, m.item_emb.weight.shape[1]
    seq = torch.nn.functional.pad(seq, (L - seq.shape[1], 0))
    n = 2 * L - 1
    A = torch.zeros(n, n)
    A[0, -1] = 1.0
    A[1:, :-1] += torch.eye(n - 1)
    lam, V = torch.linalg.eig(A)
    powers = torch.stack([lam**k for k in range(L + 1)], dim=1)  # (n, K + 1)
    ln = lambda z, mod: torch.nn.functional.layer_norm(z, (D,), mod.weight, mod.bias, mod.eps)  # noqa: E731
    x = ln(m.item_emb.weight[seq], m.ln)
    for blk in m.blocks:
        x = x * (seq > 0).unsqueeze(-1)
        B = torch.view_as_complex(blk.filter.basis.contiguous())
        c = torch.cat([blk.filter.coef, torch.zeros(n - L, B.shape[0])])  # the code's rows past L are unused
        Hc = c.to(torch.complex64) @ (B / B.abs().pow(2).sum(1, keepdim=True).sqrt())
        F = V * (Hc @ powers.T)
        padded = torch.cat([x, torch.zeros(x.shape[0], n - L, D)], dim=1).to(torch.complex64)
        y = torch.real(F @ torch.linalg.inv(V) @ padded)[:, :L]
        h = ln(y + x, blk.ln1)
        x = ln(h + blk.ffn(h), blk.ln2)
    return x[:, -1]


def test_last_position_is_the_authors_forward_when_the_window_has_padding():
    """Padding at position 0 is zeroed before each block, so the wrapped lag reads nothing there:
    the causal filter then equals the code's at the last position. A full window differs by it."""
    m = _model()
    with torch.no_grad():
        for blk in m.blocks:
            blk.filter.basis.normal_()
            blk.filter.coef.normal_()
    short = torch.tensor([[3, 5, 7, 9], [0, 2, 4, 6]])
    with torch.no_grad():
        assert torch.allclose(m.query(_batch(short)), _authors_forward(m, short), atol=1e-4)
        full = torch.tensor([[3, 5, 7, 9, 11, 13]])
        assert not torch.allclose(m.query(_batch(full)), _authors_forward(m, full), atol=1e-4)


@pytest.mark.parametrize("loss,sampler", [("ce", "none"), ("bpr", "uniform"), ("bce", "popularity"),
                                          ("sampled_softmax", "in_batch"), ("top1_max", "mixed")])
def test_any_loss_and_sampler_trains_tvrec(loss, sampler):
    """One training step through the real config and the trainer's wiring."""
    cfg = compose_cfg(["model=tvrec", f"loss={loss}", f"sampler={sampler}", "model.hidden_size=16",
                       "model.reg_weight=0.01"])
    model = instantiate(cfg.model, num_items=40, num_users=6)
    loss_fn, smp = build_loss_and_sampler(cfg, model)
    if smp is not None:
        smp.setup(torch.arange(41) % 7, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    seq = torch.randint(1, 41, (6, 12), generator=gen)
    seq[:3, :4] = 0
    targets = torch.where(seq > 0, torch.randint(1, 41, (6, 12), generator=gen), 0)
    value = training_loss(model, loss_fn, smp, _batch(seq, targets), gen)
    value.backward()
    assert torch.isfinite(value)
    assert model.blocks[0].filter.coef.grad.abs().sum() > 0
