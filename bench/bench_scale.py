"""How each stage of the token-space route grows with the catalogue: wall time, CPU time, peak memory.

    python bench/bench_scale.py --sizes 1682 5000 20000 100000 --out results/scale
    python bench/bench_scale.py --sizes 300 600 --users 40 --eval-cases 1 --no-llm   # a quick look

On synthetic catalogues (``bench/synthetic_catalogue.py``: MovieLens-like titles, a log of ``--users``
users held fixed across sizes, so the growth measured is the catalogue's alone) and an untrained SASRec
of the classroom shape, it times, per size, the stages of task 1's token-space route as
``recinterp.tasks.aligned.run_aligned`` runs them:

- ``targets``        title-token targets (``align.title_token_targets``, k = 8)
- ``aligner``        the item aligner (``catalogue_aligner``: its targets, the ridge fit, its top-1, the save)
- ``cases``          the training windows' states (the encoder over the fixed log)
- ``readout``        the per-position readout (``fit_readout``) as the presets run it (``negatives`` absent: the
                     full softmax up to 4,096 items, a sampled one above), ``--readout-epochs`` epochs
- ``readout_full``   the same with the full softmax forced at every size (``negatives`` 0)
- ``readout_sampled`` the same with ``--negatives`` sampled items at every size
- ``structured``     the structured adapter put together (``align.structured_adapter``)
- ``generation``     the evaluation's greedy decoding on ``--eval-cases`` test windows (the LLM controls only
                     with ``--full-controls``: each costs what the model's reading costs, whatever the catalogue)
- ``probe``          the evaluation's likelihood-ranking probe on the same cases, ``--distractors`` per window
- ``cooccurrence``   task 3's independent recommender where no GRU4Rec or Caser was trained
                     (``comparison.CooccurrenceRecommender``: counts, item vectors, scores of 256 windows)
- ``train_epoch``    notebook 02's encoder training, one epoch (``models.train.fit``, with its validation)

Per stage: wall seconds, CPU seconds (this process), the peak RSS while it ran and that peak above the RSS
at its start; then the growth exponent of each (least-squares slope of log cost on log items over the
sizes >= ``--fit-from``, 5k by default).  Writes ``scale.json`` and ``scale.md`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_catalogue import SIZES, random_encoder, synthetic_dataset  # noqa: E402

STAGES = ("targets", "aligner", "cases", "readout", "readout_full", "readout_sampled", "structured", "generation",
          "probe", "cooccurrence", "train_epoch")
LLM_STAGES = ("generation", "probe")


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Stage:
    """Times one stage: wall and CPU seconds, and the peak RSS (sampled every ``interval`` s by a thread)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.result = interval, {}

    def __enter__(self):
        self.start_rss = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def _watch(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.w0, time.process_time() - self.c0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.result = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": self.peak / 2 ** 20,
                       "peak_extra_mb": max(self.peak - self.start_rss, 0) / 2 ** 20}
        return False


def growth_exponent(sizes, values) -> float:
    """Least-squares slope of log(value) on log(size): 1 = linear, 2 = quadratic (nan with < 2 usable points)."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if v and v > 0 and s > 0]
    if len(pts) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else math.nan


def exponents(rows: list[dict], fit_from: int) -> dict:
    """{stage: {metric: exponent}} over the sizes >= ``fit_from``."""
    out = {}
    for stage in STAGES:
        pts = sorted((r["items"], r["stages"][stage]) for r in rows if stage in r["stages"] and r["items"] >= fit_from)
        if len(pts) >= 2:
            out[stage] = {m: growth_exponent([p[0] for p in pts], [p[1][m] for p in pts])
                          for m in ("wall_s", "cpu_s", "peak_extra_mb")}
    return out


def run_size(n: int, llm, *, users: int, readout_epochs: int, negatives: int, eval_cases: int, max_new_tokens: int,
             distractors: int = 9, full_controls: bool = False, seed: int = 0) -> dict:
    """Every stage on one synthetic catalogue of ``n`` items; -> {"items", "windows", "stages": {stage: costs}}."""
    from recinterp import align
    from recinterp.interpreter import Interpreter
    from recinterp.models.train import FitConfig, expand_prefixes, fit
    from recinterp.tasks.aligned import catalogue_aligner, fit_readout, item_table
    from recinterp.tasks.evaluate import generation_eval, ranking_eval
    from recinterp.tasks.run import build_cases, evaluated_cases, popularity_counts

    ds = synthetic_dataset(n, n_users=users, seed=seed)
    enc = random_encoder(n, seed=seed)
    table = item_table(enc)
    res = {"items": n, "windows": len(ds.train), "stages": {}}
    st = res["stages"]
    out = Path(tempfile.mkdtemp(prefix=f"scale{n}_"))

    def stage(name, fn):
        with Stage() as s:
            value = fn()
        st[name] = s.result
        print(f"  {n:>7} items  {name:<16} {s.result['wall_s']:8.2f} s wall {s.result['cpu_s']:8.2f} s cpu "
              f"{s.result['peak_rss_mb']:8.0f} MB peak (+{s.result['peak_extra_mb']:.0f})", flush=True)
        return value

    if llm is not None:
        stage("targets", lambda: align.title_token_targets(llm, ds.catalogue.norm_titles, 8))
        aligner, fit_rep = stage("aligner", lambda: catalogue_aligner(enc, ds, llm, out))
        res["aligner"] = {k: fit_rep.get(k) for k in ("hidden", "token_top1_fitted_items", "token_top1_sampled_items",
                                                      "mse", "mean_predictor_mse")}
    tr = stage("cases", lambda: build_cases("recovery", enc, ds, "train", "all", "last", None, seed=seed))
    lin, ro = stage("readout", lambda: fit_readout(tr, table, epochs=readout_epochs, max_pairs=200000, seed=seed))
    res["readout"] = {k: ro[k] for k in ("n_pairs", "top1_train")}
    _, ro_f = stage("readout_full", lambda: fit_readout(tr, table, epochs=readout_epochs, max_pairs=200000,
                                                        seed=seed, negatives=0))
    res["readout_full"] = {"top1_train": ro_f["top1_train"]}
    _, ro_s = stage("readout_sampled", lambda: fit_readout(tr, table, epochs=readout_epochs, max_pairs=200000,
                                                           seed=seed, negatives=negatives))
    res["readout_sampled"] = {"negatives": negatives, "top1_train": ro_s["top1_train"]}
    if llm is not None:
        P = int(tr.features.shape[2])
        proj = stage("structured", lambda: align.structured_adapter(lin, table, aligner, n_positions=P, layout="list",
                                                                    input="all", task="recovery", llm=llm.name))
        interp = Interpreter(llm, proj)
        cases = evaluated_cases("recovery", enc, ds, "test", "all", "last", out, eval_cases, seed)
        pop = popularity_counts(ds)
        titles = ds.catalogue.norm_titles
        gen_controls = ("shuffled", "zero", "popularity") if full_controls else ("popularity",)
        probe_controls = ("shuffled", "zero") if full_controls else ()
        stage("generation", lambda: generation_eval(interp, cases, titles, pop, gen_controls,
                                                    max_new_tokens=max_new_tokens, batch_size=48, seed=seed))
        stage("probe", lambda: ranking_eval(interp, cases, titles, "random", distractors, pop,
                                            enc.item_embeddings.weight, controls=probe_controls, seed=seed))
    from recinterp.comparison import CooccurrenceRecommender

    def cooccurrence():
        rec = CooccurrenceRecommender(n).fit(ds.train)
        return rec.score_sequences(ds.train.seqs[:256], ds.train.lens[:256])

    stage("cooccurrence", cooccurrence)
    enc.train()
    hist = stage("train_epoch", lambda: fit(enc, ds.train, expand_prefixes(ds.val, ds.pad_id),
                                             FitConfig(epochs=1, batch_size=512, lr=2e-3, seed=seed), log=None))
    res["train_epoch_loss"] = hist.history[0]["loss"]
    return res


def markdown(report: dict) -> str:
    rows, ex = report["rows"], report["exponents"]
    sizes = [r["items"] for r in rows]
    head = "| stage | " + " | ".join(f"{s:,} items: wall s / cpu s / peak MB (+extra)" for s in sizes) + \
           f" | exponent wall / cpu / extra mem ({report['fit_from']:,}+ items) |"
    lines = [head, "|" + "---|" * (len(sizes) + 2)]
    for stage in STAGES:
        if not any(stage in r["stages"] for r in rows):
            continue
        cells = []
        for r in rows:
            c = r["stages"].get(stage)
            cells.append(f"{c['wall_s']:.2f} / {c['cpu_s']:.2f} / {c['peak_rss_mb']:.0f} (+{c['peak_extra_mb']:.0f})"
                         if c else "-")
        e = ex.get(stage)
        cells.append(" / ".join(f"{e[m]:.2f}" for m in ("wall_s", "cpu_s", "peak_extra_mb")) if e else "-")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--users", type=int, default=500, help="users of the synthetic log (the same at every size)")
    ap.add_argument("--readout-epochs", type=int, default=1)
    ap.add_argument("--negatives", type=int, default=2048, help="sampled items of the readout_sampled stage")
    ap.add_argument("--eval-cases", type=int, default=4, help="test windows the generation and probe stages read")
    ap.add_argument("--max-new-tokens", type=int, default=72)
    ap.add_argument("--distractors", type=int, default=9, help="random distractors per window in the probe")
    ap.add_argument("--full-controls", action="store_true",
                    help="also run the shuffled and zero controls in generation and probe (default: the model only, "
                         "plus the popularity answer; each LLM control costs what the model's reading costs)")
    ap.add_argument("--fit-from", type=int, default=5000, help="smallest size in the growth fit")
    ap.add_argument("--no-llm", action="store_true", help="skip the stages that need the embedded LLM")
    ap.add_argument("--out", default="results/scale")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.eval_cases < 2:
        ap.error("--eval-cases must be at least 2 (the shuffled control swaps features between cases)")
    llm = None
    if not a.no_llm:
        from recinterp.llm import load_llm

        llm = load_llm(device="cpu")
    rows = []
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in sorted(a.sizes):
        rows.append(run_size(n, llm, users=a.users, readout_epochs=a.readout_epochs, negatives=a.negatives,
                             eval_cases=a.eval_cases, max_new_tokens=a.max_new_tokens, distractors=a.distractors,
                             full_controls=a.full_controls, seed=a.seed))
        report = {"rows": rows, "exponents": exponents(rows, a.fit_from), "fit_from": a.fit_from,
                  "settings": vars(a), "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
        (out / "scale.json").write_text(json.dumps(report, indent=1))  # after every size: a cut run keeps what ran
        (out / "scale.md").write_text(markdown(report))
    for stage, e in report["exponents"].items():
        print(f"{stage:<16} growth exponent: wall {e['wall_s']:.2f}, cpu {e['cpu_s']:.2f}, "
              f"extra memory {e['peak_extra_mb']:.2f}")
    print(json.dumps({"json": str(out / "scale.json"), "md": str(out / "scale.md")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
