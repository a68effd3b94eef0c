"""Speed benchmark: recexp versus RecBole on the same data, split, hyperparameters and machine.

    python bench/bench_speed.py                                 # Beauty, SASRec, 1 epoch each, CPU
    python bench/bench_speed.py --models sasrec,gru4rec,bert4rec --epochs 2 --device cuda
    python bench/bench_speed.py --scale ml1m,ml20m-tenth,items-1m  # recexp only, growth with size
    python bench/bench_speed.py --scale ml20m,items-1m --scale-losses ce,sce,sampled_softmax --train-batches 3

Each measurement runs in its own subprocess (so peak memory is that run's alone): recexp through
its real config (``conf/``, the ``experiment=`` preset) and RecBole 1.2.1 in a separate venv
(``bench/.recbole-venv``, built here on first use; never a recexp dependency) on atomic files
converted from recexp's own prepared split. Both evaluate full ranking over all items without
masking the user's history (RecBole's sequential protocol). Results: a table on stdout and
JSON under ``bench/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RECBOLE_VENV = BENCH / ".recbole-venv"
# pins that install on Python 3.11 (see shared STACK-NOTES): numpy 2 / pandas 2.2 break RecBole 1.2.1
RECBOLE_PINS = ["torch==2.13.0", "recbole==1.2.1", "numpy<2", "pandas<2.2", "scipy<1.14", "setuptools<81",
                "colorlog", "texttable", "tensorboard", "psutil"]

# name -> (recexp overrides, RecBole model). Hyperparameters follow the Beauty SASRec preset
# (len 50, d 64, 2 blocks, 2 heads, dropout 0.5, CE, batch 256, lr 1e-3); recbole_runner.MODEL_ARGS
# holds RecBole's side of the same values.
MODELS: dict[str, tuple[list[str], str]] = {
    "sasrec": (["model=sasrec", "loss=ce", "sampler=none", "model.dropout=0.5"], "SASRec"),
    "gru4rec": (["model=gru4rec", "loss=ce", "sampler=none", "model.embedding_size=64", "model.hidden_size=64",
                 "model.dropout_emb=0.3"], "GRU4Rec"),
    "bert4rec": (["model=bert4rec", "loss=ce", "sampler=none", "model.dropout=0.5", "model.mask_prob=0.2"],
                 "BERT4Rec"),
}

# scale presets on the synthetic generator: (users, items, mean length, max length, max_len)
SCALES: dict[str, dict] = {
    # ML-1M: 6,040 users, 3,416 items (after 5-core), 1.0M ratings; model length 200
    "ml1m": {"users": 6040, "items": 3416, "mean_length": 166.0, "min_length": 20, "max_length": 2000,
             "max_len": 200},
    # ML-20M has 138k users, 27k items, 20M ratings: a tenth of its users (same items, same
    # lengths) is what a 2-core machine holds in bounded time; with --train-batches the epoch is
    # extrapolated (stated in the output)
    "ml20m-tenth": {"users": 13850, "items": 26700, "mean_length": 144.0, "min_length": 20,
                    "max_length": 2000, "max_len": 200},
}


# --scale-losses: the full-catalogue shapes, trainer steps on random sequences (bench_worker scale).
# users, items, length distribution, model length, batch, and per-loss overrides. SCE's bucket sizes
# follow the batch: n_buckets x bucket_size_x ~ 2x the targets of a batch (ML-20M: ~51k targets per
# 256 windows of 200; items-1m: ~5k per 256 windows of 50), 256 negatives per query.
SHAPES: dict[str, dict] = {
    "ml20m": {"users": 138493, "items": 26744, "mean_length": 144.0, "min_length": 20, "max_length": 2000,
              "max_len": 200, "batch_size": 256, "eval_users": 4096,
              "sce": "loss=sce loss.n_buckets=128 loss.bucket_size_x=800 loss.bucket_size_y=256"},
    "items-1m": {"users": 200000, "items": 1000000, "mean_length": 20.0, "min_length": 5, "max_length": 500,
                 "max_len": 50, "batch_size": 256, "eval_users": 1024,
                 "sce": "loss=sce loss.n_buckets=64 loss.bucket_size_x=160 loss.bucket_size_y=256"},
}
LOSS_OVERRIDES = {"ce": "loss=ce sampler=none",
                  "rece": "loss=rece sampler=none",  # auto buckets (the paper's balance), one round
                  "sampled_softmax": "loss=sampled_softmax sampler=uniform sampler.num_negatives=256 "
                                     "sampler.shared=true"}


def shapes(args: argparse.Namespace, log: Path) -> list[dict]:
    rows = []
    for name in args.scale.split(","):
        s = SHAPES[name]
        for loss in args.scale_losses.split(","):
            ov = s["sce"] if loss == "sce" else LOSS_OVERRIDES[loss]
            n = args.ce_batches if loss == "ce" else (args.train_batches or 5)
            res = json.loads(sh(worker_cmd("scale", users=s["users"], items=s["items"], mean_length=s["mean_length"],
                                           min_length=s["min_length"], max_length=s["max_length"],
                                           max_len=s["max_len"], batch_size=s["batch_size"],
                                           eval_users=s["eval_users"], train_batches=n, device=args.device,
                                           overrides=ov + " " + args.overrides), recexp_env(), log))
            res["scale"], res["loss_name"] = name, loss
            print(f"{name} {loss}: {res}", file=sys.stderr, flush=True)
            rows.append(res)
    return rows


def print_shapes(rows: list[dict]) -> None:
    print(f"\n{'scale':9} {'loss':16} {'users':>7} {'items':>9} {'interact.':>10} {'targets/b':>9} "
          f"{'step (s)':>8} {'step CPU s':>10} {'CPU ms/1k tgt':>13} {'epoch (s)':>10} {'vs ce':>6} {'CPU vs ce':>9} {'eval (s)':>9} "
          f"{'RSS setup':>9} {'peak RSS':>9}")
    for r in rows:
        ce = next((x for x in rows if x["scale"] == r["scale"] and x["loss_name"] == "ce"), None)
        rel = f"{r['step_s'] / ce['step_s']:.3f}" if ce else "-"
        rel_cpu = f"{r['step_cpu_s'] / ce['step_cpu_s']:.3f}" if ce else "-"
        print(f"{r['scale']:9} {r['loss_name']:16} {r['users']:>7} {r['items']:>9} {r['interactions']:>10} "
              f"{r['targets_per_batch']:>9.0f} {r['step_s']:8.2f} {r['step_cpu_s']:10.2f} "
              f"{r['step_cpu_s'] / r['targets_per_batch'] * 1e6:13.1f} "
              f"{r['train_epoch_s'][0]:10.0f} {rel:>6} {rel_cpu:>9} "
              f"{r['eval_s'][0]:9.1f} {r['rss_after_setup_mb']:9.0f} {r['peak_rss_mb']:9.0f}")
    for r in rows:
        print(f"  {r['scale']} {r['loss_name']}: {r['note']}; eval measured {r['eval_part_s']:.2f} s "
              f"({r['eval_cpu_part_s']:.2f} CPU s); RSS after training steps {r['rss_after_train_mb']:.0f} MB")


def sh(cmd: list[str], env: dict | None = None, log: Path | None = None) -> str:
    """Run ``cmd``; return its last stdout line (the JSON result). stderr goes to ``log``."""
    with open(log or os.devnull, "a") as err:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {p.returncode}); see {log}")
    return p.stdout.strip().splitlines()[-1]


def ensure_recbole(log: Path) -> Path:
    py = RECBOLE_VENV / "bin" / "python"
    probe = [str(py), "-c", "import recbole, colorlog, texttable"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"building RecBole venv in {RECBOLE_VENV} (once; ~1-2 min)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(RECBOLE_VENV)], check=True)
    with open(log, "a") as out:
        subprocess.run([str(RECBOLE_VENV / "bin" / "pip"), "install", "-q", *RECBOLE_PINS], check=True,
                       stdout=out, stderr=out)
    return py


def recexp_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def worker_cmd(kind: str, **kw: object) -> list[str]:
    cmd = [sys.executable, str(BENCH / "bench_worker.py"), kind]
    for k, v in kw.items():
        if v is not None and v is not False:
            cmd += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return cmd


def ratio(a: float | None, b: float | None) -> str:
    return f"{b / a:.1f}x" if a and b else "-"


def compare(args: argparse.Namespace, log: Path) -> list[dict]:
    rows = []
    data_overrides = [f"dataset={args.dataset}", f"device={args.device}"]
    if args.data_dir:
        data_overrides.append(f"data_dir={args.data_dir}")
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"--models: unknown model {name!r} (known: {', '.join(MODELS)})")
        if not (ROOT / "conf" / "model" / f"{name}.yaml").is_file():
            print(f"skip {name}: recexp has no conf/model/{name}.yaml on this branch", file=sys.stderr)
            continue
        overrides, rb_name = MODELS[name]
        only_eval = name in args.eval_only.split(",")
        passes = args.eval_passes if only_eval else None
        ours = json.loads(sh(worker_cmd("recexp", epochs=args.epochs, eval_passes=passes,
                                        overrides=" ".join(data_overrides + overrides + args.overrides.split())),
                             recexp_env(), log))
        print(f"recexp {name}: {ours}", file=sys.stderr)
        blas = None
        if args.before_row:  # the same code with PyTorch's BLAS products and glibc's malloc defaults: the before row
            blas = json.loads(sh(worker_cmd("recexp", epochs=args.epochs, eval_passes=passes,
                                            overrides=" ".join(data_overrides + overrides + args.overrides.split())),
                                 {**recexp_env(), "RECEXP_CPU_GEMM": "blas", "RECEXP_MALLOC": "default"}, log))
            print(f"recexp (before) {name}: {blas}", file=sys.stderr)
        theirs = None
        if not args.no_recbole:
            py = ensure_recbole(log)
            atomic = BENCH / "out" / "atomic"
            sh(worker_cmd("atomic", out=atomic, overrides=" ".join(data_overrides)), recexp_env(), log)
            theirs = json.loads(sh([str(py), str(BENCH / "recbole_runner.py"), "--data-path", str(atomic),
                                    "--dataset", "bench", "--model", rb_name,
                                    "--epochs", str(0 if only_eval else args.epochs),
                                    "--eval-passes", str(args.eval_passes), "--device", args.device], None, log))
            print(f"recbole {rb_name}: {theirs}", file=sys.stderr)
        rows.append({"model": name, "recexp": ours, "recbole": theirs, "recexp_blas": blas})
    return rows


def time_to_quality(args: argparse.Namespace, rows: list[dict], log: Path) -> dict | None:
    """Wall time for recexp's SASRec (its Beauty preset's batch 128) to reach ``--ttq`` valid
    NDCG@10 (history not masked, as RecBole), against RecBole's measured epoch + evaluation in this
    invocation times ``--ttq-recbole-epochs`` (the epochs RecBole needs for that level: 11 for
    .050 on Beauty, measured here on CPU with bench/recbole_runner.py, 2026-12-01, docs/results.md;
    shared/STACK-NOTES had 18 from an H200 run). ``--overrides`` apply to this run too (e.g.
    ``trainer.window_mode=prefixes trainer.batch_size=256``: RecBole's training windows)."""
    rb = next((r["recbole"] for r in rows if r["model"] == "sasrec" and r["recbole"]), None)
    ov = [f"dataset={args.dataset}", f"device={args.device}", *MODELS["sasrec"][0], "trainer.batch_size=128",
          *args.overrides.split()] + ([f"data_dir={args.data_dir}"] if args.data_dir else [])
    ours = json.loads(sh(worker_cmd("recexp", epochs=args.ttq_epochs, overrides=" ".join(ov), stop_at=args.ttq),
                         recexp_env(), log))
    curve = ours["valid_per_epoch"]
    wall = [a + b for a, b in zip(ours["train_epoch_s"], ours["eval_s"], strict=True)]
    hit = next((i for i, v in enumerate(curve) if v >= args.ttq), None)
    res = {"target": args.ttq, "recexp_curve": curve, "recexp_epoch_wall_s": wall,
           "recexp_epochs": None if hit is None else hit + 1,
           "recexp_s": None if hit is None else sum(wall[: hit + 1])}
    if rb:
        res["recbole_s_estimate"] = args.ttq_recbole_epochs * (rb["train_epoch_s"][0] + rb["eval_s"][0])
    print(f"ttq: {res}", file=sys.stderr)
    return res


def print_compare(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nSame data/split/hyperparameters, {args.epochs} epoch(s), device={args.device}; "
          "per-epoch means; speed-up = RecBole / recexp")
    print(f"{'model':10} {'phase':22} {'recexp':>12} {'RecBole':>12} {'speed-up':>9}")
    for r in rows:
        o, t = r["recexp"], r["recbole"] or {}
        mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
        for label, a, b in [("train epoch (s)", mean(o["train_epoch_s"]), mean(t.get("train_epoch_s", []))),
                            ("train epoch (CPU s)", mean(o["train_epoch_cpu_s"]),
                             mean(t.get("train_epoch_cpu_s", []))),
                            ("full-rank eval (s)", mean(o["eval_s"]), mean(t.get("eval_s", []))),
                            ("full-rank eval (CPU s)", mean(o["eval_cpu_s"]), mean(t.get("eval_cpu_s", []))),
                            ("peak RSS (MB)", o["peak_rss_mb"], t.get("peak_rss_mb"))]:
            print(f"{r['model']:10} {label:22} {a if a is not None else float('nan'):12.2f} "
                  f"{b if b is not None else float('nan'):12.2f} "
                  f"{ratio(a, b):>9}")
        if r.get("recexp_blas"):  # recexp with BLAS products and malloc defaults: speed-up = that / recexp
            z = r["recexp_blas"]
            for label, key in [("train epoch (CPU s)", "train_epoch_cpu_s"), ("full-rank eval (CPU s)", "eval_cpu_s")]:
                a, b = mean(o[key]), mean(z[key])
                if a is not None and b is not None:
                    print(f"{r['model']:10} {label + ', before':22} {b:12.2f} {'':>12} {ratio(a, b):>9}"
                          f"  (RecBole / recexp before: {ratio(b, mean(t.get(key, [])))})")
        for m in ("ndcg_10", "hit_10"):
            b = t.get("valid", {}).get(m)
            print(f"{r['model']:10} {'valid ' + m:22} {o['valid'].get(m, float('nan')):12.4f} "
                  f"{b if b is not None else float('nan'):12.4f}")


def scale(args: argparse.Namespace, log: Path) -> list[dict]:
    rows = []
    for name in args.scale.split(","):
        if name == "items-1m":
            res = json.loads(sh(worker_cmd("rank1m", device=args.device), recexp_env(), log))
        else:
            s = SCALES[name]
            ov = ["dataset=synthetic", f"device={args.device}", f"max_len={s['max_len']}",
                  f"dataset.generator.num_users={s['users']}", f"dataset.generator.num_items={s['items']}",
                  f"dataset.generator.mean_length={s['mean_length']}",
                  f"dataset.generator.min_length={s['min_length']}",
                  f"dataset.generator.max_length={s['max_length']}", *MODELS["sasrec"][0],
                  *args.overrides.split()]
            res = json.loads(sh(worker_cmd("recexp", epochs=args.epochs, overrides=" ".join(ov),
                                           train_batches=args.train_batches or None),
                                recexp_env(), log))
        res["scale"] = name
        print(f"{name}: {res}", file=sys.stderr)
        rows.append(res)
    return rows


def print_scale(rows: list[dict]) -> None:
    print(f"\n{'scale':12} {'users':>8} {'items':>9} {'interactions':>12} {'epoch (s)':>10} "
          f"{'eval (s)':>9} {'peak RSS MB':>11}  note")
    for r in rows:
        ep = r["train_epoch_s"][-1] if r.get("train_epoch_s") else float("nan")  # last: past warm-up
        print(f"{r['scale']:12} {r['users']:>8} {r['items']:>9} {r['interactions']:>12} {ep:10.2f} "
              f"{r['eval_s'][-1]:9.2f} {r['peak_rss_mb']:11.0f}  {r.get('note', '')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="beauty", help="recexp dataset config name (default beauty)")
    ap.add_argument("--data-dir", default=os.environ.get("RECEXP_DATA_DIR"), help="RECEXP_DATA_DIR")
    ap.add_argument("--models", default="sasrec,gru4rec,bert4rec", help="comma-separated; missing ones skip")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-recbole", action="store_true", help="time recexp only")
    ap.add_argument("--eval-only", default="", help="comma-separated models timed on evaluation only (no "
                    "training epoch, untrained weights: a pass costs the same), --eval-passes each side")
    ap.add_argument("--eval-passes", type=int, default=2)
    ap.add_argument("--before-row", action="store_true", help="also time recexp with RECEXP_CPU_GEMM=blas "
                    "RECEXP_MALLOC=default (PyTorch's BLAS for fp32 products, glibc's malloc defaults): the "
                    "before row of recexp.runtime.gemm and recexp.runtime.malloc, same invocation")
    ap.add_argument("--overrides", default="", help="extra recexp overrides, e.g. 'trainer.compile=true'")
    ap.add_argument("--ttq", type=float, default=0.0,
                    help="also time recexp SASRec to this valid NDCG@10 (e.g. 0.05) against RecBole's epochs")
    ap.add_argument("--ttq-epochs", type=int, default=40, help="epoch budget of the time-to-quality run")
    ap.add_argument("--ttq-recbole-epochs", type=int, default=11,
                    help="epochs RecBole's SASRec needs to reach --ttq (11 for .050 on Beauty, measured on CPU)")
    ap.add_argument("--scale", default="", help="run the scale benchmark instead: ml1m,ml20m-tenth,items-1m")
    ap.add_argument("--scale-losses", default="",
                    help="with --scale ml20m,items-1m: time these losses (ce,sce,rece,sampled_softmax) on each shape")
    ap.add_argument("--ce-batches", type=int, default=1, help="--scale-losses: timed steps of full CE")
    ap.add_argument("--train-batches", type=int, default=0,
                    help="scale runs: time this many batches and extrapolate the epoch (0: full epochs)")
    args = ap.parse_args()
    out_dir = BENCH / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = out_dir / f"bench-{stamp}.log"
    machine = {"cpu": (sh(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]) or "?").strip(),
               "cores": os.cpu_count(), "load_avg_start": os.getloadavg()}
    if args.scale_losses:
        rows = shapes(args, log)
    else:
        rows = scale(args, log) if args.scale else compare(args, log)
    ttq = time_to_quality(args, rows, log) if args.ttq and not args.scale else None
    machine["load_avg_end"] = os.getloadavg()
    result = {"args": vars(args), "machine": machine, "rows": rows, "time_to_quality": ttq}
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(f"machine: {machine}")
    if args.scale_losses:
        print_shapes(rows)
    else:
        print_scale(rows) if args.scale else print_compare(rows, args)
    if ttq:
        ours, theirs = ttq["recexp_s"], ttq.get("recbole_s_estimate")
        print(f"\ntime to valid NDCG@10 >= {ttq['target']} (history not masked): recexp SASRec "
              + (f"{ours:.0f} s ({ttq['recexp_epochs']} epochs, batch 128{' + ' + args.overrides if args.overrides else ''})"
                 if ours else
                 f"not reached in {len(ttq['recexp_curve'])} epochs (best {max(ttq['recexp_curve']):.4f})")
              + (f"; RecBole {args.ttq_recbole_epochs} epochs x (epoch + eval) measured above = {theirs:.0f} s"
                 if theirs else "") + (f" -> {theirs / ours:.1f}x" if ours and theirs else ""))
    print(f"\nJSON: {out_dir / f'bench-{stamp}.json'}  log: {log}")


if __name__ == "__main__":
    main()
