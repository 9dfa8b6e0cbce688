"""What a notebook says about the run it is part of: its run card, its figures, and what its preset ran.

    card = run_card(preset, seed=seed, device=device)  # printed at the top; metrics["run_card"] = card
    show_figure(fig, out / "probe.png", "Task 1 probe: Hit@1 ...")  # saved, shown with alt text; None: says so
    display(Markdown(what_ran("recovery", preset)))  # what this preset ran, what it did not, and why

Nothing here measures anything: the card records the machine and the preset, the notes read the preset's
settings (``recinterp.plan.resolve_preset``), so the prose of a notebook follows the run it sits in.
"""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

# What each shipped preset is for (README, "Presets"); a preset of one's own gets the generic line.
PURPOSE = {
    "smoke": "the test suite's tiny run: a few steps and a handful of cases that check the plumbing; its numbers "
             "measure nothing",
    "classroom": "the preset a class runs in under 10 minutes on 2 CPU cores: one dataset, one encoder, the "
                 "token-space route alone",
    "cpu": "the full CPU reproduction: both datasets, three encoders in task 2, both routes, sized for 2 CPU cores "
           "and the embedded 135M LLM",
    "gpu": "the paper's scale with LLaMA-2-7B on a GPU: every encoder, every test case, adapters trained through "
           "the LLM for epochs",
}
CARD_FIELDS = ("preset", "purpose", "cpu", "cores", "torch_threads", "device", "seed", "commit", "time_utc")
# The paper's route at the paper's scale (README, "On a GPU"): the gpu preset, its LLM named explicitly.
GPU_COMMAND = 'make reproduce PRESET=gpu TORCH_SPEC="torch==2.6.0" PARAMS="llm={llm} device=cuda"'


def purpose(preset: str) -> str:
    """One line: what a preset is for."""
    name = Path(str(preset)).stem
    return PURPOSE.get(name, "a preset of your own: its JSON file says what it runs")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else ``platform``); "unknown" when neither says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value and not value.isdigit():
                    return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def resolve_device(device: str | None) -> str:
    """"auto" (or none) -> cuda when a GPU is visible, else cpu; any other name as it is."""
    if device in (None, "", "auto"):
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return str(device)


def commit() -> str:
    """The checkout's short commit ("+dirty" when tracked files changed); "unknown" outside git.  Never raises."""
    try:
        from recinterp.reproduce import source_commit

        return source_commit() or "unknown"
    except Exception:  # noqa: BLE001 -- a run card must never stop a notebook
        return "unknown"


def run_card(preset: str, seed=None, device: str | None = "auto", show: bool = True) -> dict:
    """The run card every notebook opens with: the preset and what it is for, the machine (CPU model, cores,
    torch threads, device), the seed, the commit and the time (UTC).  Printed, and returned for metrics.json."""
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = 1
    card = {"preset": str(preset), "purpose": purpose(preset), "cpu": cpu_model(), "cores": os.cpu_count() or 1,
            "torch_threads": threads, "device": resolve_device(device),
            "seed": seed if seed is not None and seed != "" else "none (this notebook draws nothing at random)",
            "commit": commit(), "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if show:
        print(format_card(card))
    return card


def format_card(card: dict) -> str:
    """The card as three printed lines."""
    return (f"Run card: preset {card['preset']}: {card['purpose']}.\n"
            f"  machine: {card['cpu']}, {card['cores']} cores, {card['torch_threads']} torch "
            f"thread{'s' if card['torch_threads'] != 1 else ''}, device "
            f"{card['device']}\n  seed {card['seed']} · commit {card['commit']} · {card['time_utc']}")


def check_card(card) -> list[str]:
    """The fields of a run card that are missing or empty (what the notebook tests assert is [])."""
    if not isinstance(card, dict):
        return list(CARD_FIELDS)
    return [k for k in CARD_FIELDS if card.get(k) is None or str(card.get(k)).strip() == ""]


# -- figures -------------------------------------------------------------------------------------
def show_figure(fig, path=None, alt: str = "", empty: str = "") -> Path | None:
    """Save ``fig`` (a matplotlib Figure, or anything with ``.figure``) as PNG to ``path`` and show it with ``alt``
    as its alt text and a printed "Figure: ..." line.  ``fig`` None (its plot function had no data): no file is
    written, one printed line says so (``empty``: why), and None is returned."""
    from IPython.display import Image, display

    if not alt:
        raise ValueError("show_figure needs alt text: say what the figure plots")
    if fig is None:
        print(f"No figure drawn ({alt}): {empty or 'this run has no data for it'}.")
        return None
    import io

    import matplotlib.pyplot as plt

    fig = getattr(fig, "figure", fig)  # a seaborn FacetGrid -> its Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)  # shown once, below, with its alt text (not again by the inline backend)
    data = buf.getvalue()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    display(Image(data=data, format="png", alt=alt))
    print(f"Figure: {alt}.")
    return path


# -- what this preset ran -------------------------------------------------------------------------
ALL_ENCODERS = ("sasrec", "gru4rec", "caser")


def _names(xs) -> str:
    from recinterp.models import encoder_label

    xs = [encoder_label(x) if x in ALL_ENCODERS else str(x) for x in xs]
    return ", ".join(xs[:-1]) + f" and {xs[-1]}" if len(xs) > 1 else (xs[0] if xs else "none")


def end_to_end_on(cfg: dict) -> bool:
    """Does a task section train the paper's route through the LLM (``"end_to_end": false``: no)?"""
    return cfg.get("end_to_end", True) is not False


def _budget(train: dict) -> str:
    return f"{train['epochs']} epochs" if train.get("max_steps") is None else f"{train['max_steps']} steps"


def paper_route(section: str, preset: str, llm: str = "") -> str:
    """The exact command that runs the paper's route with LLaMA-2-7B on a GPU, and what it changes against
    ``preset`` (read from both presets' settings; ``llm``: the notebook's LLM parameter, empty for the preset's)."""
    from recinterp.plan import resolve_preset

    gpu, here = resolve_preset("gpu", section), resolve_preset(preset, section)
    changes, here_llm = [], llm or here["llm"]
    if gpu["llm"] != here_llm:
        changes.append(f"the LLM becomes `{gpu['llm']}` (here `{here_llm}`)")
    if not end_to_end_on(here):
        changes.append("the end-to-end route, off here, is trained")
    if gpu.get("headline_route") != here.get("headline_route"):
        changes.append(f"the headline route becomes `{gpu.get('headline_route')}` (here `{here.get('headline_route')}`)")
    if not end_to_end_on(here) or _budget(gpu["train"]) != _budget(here["train"]):
        changes.append(f"the end-to-end adapter trains for {_budget(gpu['train'])}"
                       + (f" (here {_budget(here['train'])})" if end_to_end_on(here) else ""))
    if list(gpu["encoders"]) != list(here["encoders"]):
        changes.append(f"the encoders are {_names(gpu['encoders'])} (here {_names(here['encoders'])})")
    if list(gpu["datasets"]) != list(here["datasets"]):
        changes.append(f"the datasets are {_names(gpu['datasets'])} (here {_names(here['datasets'])})")
    n, n_here = gpu["eval"]["n_cases"], here["eval"]["n_cases"]
    if n != n_here:
        changes.append(("every test case is evaluated" if n is None else f"{n} cases are evaluated")
                       + (f" (here {n_here})" if n_here is not None else ""))
    return (f"**The paper's route at the paper's scale** (LLaMA-2-7B on a GPU):\n\n"
            f"```bash\n{GPU_COMMAND.format(llm=gpu['llm'])}\n```\n\nAgainst this run (preset `{preset}`): "
            + ("; ".join(changes) or "nothing: this run uses the gpu preset's settings") + ". How to run it: `docs/guide.md`, \"Running on a GPU\"; what has been measured on a GPU so far: "
            "`docs/measurements.md`, \"The GPU\".")


def what_ran(section: str, preset: str, datasets: str = "") -> str:
    """Markdown: what this preset's ``section`` runs and what it leaves out, and why, read from its settings
    (sections "data", "recommenders", "recovery", "residual", "instantiation")."""
    from recinterp.plan import resolve_preset

    if section == "data":  # notebook 01 builds whatever it is given; the preset decides what the others read
        read_later = list(dict.fromkeys(d for s in ("recommenders", "recovery", "residual", "instantiation")
                                        for d in resolve_preset(preset, s).get("datasets") or []))
        built = [d for d in datasets.split(",") if d]
        return (f"**What the `{preset}` preset uses** ({purpose(preset)}): this notebook builds "
                f"{_names(built) if built else 'the datasets it is given'}; notebooks 02-05 of this preset read "
                f"{_names(read_later)}" + (f" (the others are built and cached for the presets that read them)"
                                          if set(built) - set(read_later) else "") + ".")
    cfg = resolve_preset(preset, section)
    ds = [d for d in datasets.split(",") if d] or list(cfg.get("datasets") or [])
    lines = [f"**What the `{preset}` preset runs here** ({purpose(preset)}): datasets {_names(ds)}."]
    if section == "recommenders":
        from recinterp.models.benchmark import DREAMREC_VARIANTS

        enc, var = list(cfg["encoders"]), list(cfg["dreamrec"]["variants"])
        lines.append(f"- Encoders trained: {_names(enc)}"
                     + (f"; not trained here: {_names([e for e in ALL_ENCODERS if e not in enc])} (the cpu and gpu "
                        "presets train them)." if len(enc) < len(ALL_ENCODERS) else "."))
        lines.append(f"- DreamRec variants trained: {_names([f'`dreamrec_{v}`' for v in var])}"
                     + (f"; the others ({_names([f'`dreamrec_{v}`' for v in DREAMREC_VARIANTS if v not in var])}) run "
                        "in other presets or `make dreamrec-grid`." if len(var) < len(DREAMREC_VARIANTS) else "."))
        return "\n".join(lines)
    if section == "instantiation":
        rcfg = resolve_preset(preset, "residual")
        lines.append(f"- The headline route is `{cfg.get('headline_route', 'end_to_end')}`. "
                     + ("Notebook 04 trained the end-to-end residual adapter in this preset, so the appended route runs "
                        "through it." if end_to_end_on(rcfg) else
                        "Notebook 04 trained no end-to-end adapter in this preset (its end-to-end route is off), so the "
                        "routes that need it are reported missing below and the token-space routes carry the task."))
        return "\n".join(lines)
    e2e = end_to_end_on(cfg)
    lines.append(f"- Encoders read: {_names(cfg['encoders'])}"
                 + (f" (the end-to-end route on {_names(cfg['end_to_end_encoders'])} only)"
                    if e2e and cfg.get("end_to_end_encoders") else "") + ".")
    aligned = (cfg.get("aligned") or {}).get("enabled")
    lines.append(f"- The token-space route (`aligned`, fitted without the LLM): {'run' if aligned else 'off'}.")
    if e2e:
        t = cfg["train"]
        lines.append(f"- The end-to-end route (the paper's, trained through the LLM): run, {_budget(t)} per adapter.")
    else:
        lines.append("- The end-to-end route (the paper's, trained through the LLM): **off** in this preset "
                     "(`\"end_to_end\": false`), so that the run fits a lesson's time; `docs/measurements.md` and the "
                     "learning curve of `make curve` say what this route needs on a CPU. The tables below hold no "
                     "run of it, and no training curve is drawn.")
    lines.append(f"- The headline (role `main`): the `{cfg.get('headline_route', 'end_to_end')}` route; the other "
                 "route, when it runs, is the contrast.")
    if section == "residual":
        abl = (cfg.get("ablation") or {}).get("variants") or []
        lines.append(f"- Ablation of how the two states reach the LLM: "
                     + (f"{len(abl)} variants." if abl and e2e else "none in this preset (the default variant is used)."))
    return "\n".join(lines)
