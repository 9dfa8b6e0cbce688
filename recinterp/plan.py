"""One function turns a preset section into the settings of one run: ``resolve_preset``.

    plan = resolve_preset("cpu", "residual", dataset="steam", encoder="caser")
    run_task("residual", enc, ds, llm, train=plan["train"], eval=plan["eval"], ...)
    plan = resolve_preset("gpu", "recovery", dataset="movielens", role="variant", overrides={"train": {"max_steps": 2}})

A preset (``recinterp/presets/<name>.json``) says only what differs from the dataclass
defaults: adapter training (``recinterp.train_adapter.TrainConfig``), evaluation
(``recinterp.tasks.EvalConfig``) and recommender fitting (``recinterp.models.train.FitConfig``).
Resolution fills every ``train`` / ``eval`` dict with those defaults, then applies, in
order, the section's overrides for the run:

- ``by_dataset[<dataset>]``        (recovery, residual: ``{"train": {...}, "eval": {...}}``)
- ``focus``                        (residual: the ablation's dataset and encoder only)
- ``variant_train`` / ``variant_eval``  (recovery, ``role="variant"``: the non-main adapters)
- ``train_by_dataset[<dataset>]``  (recommenders)
- ``overrides``                    (the caller's, merged last, one level deep per key)

and leaves the override tables out of what it returns.  Unknown option names raise.
"""
from __future__ import annotations

import copy
from dataclasses import asdict

from recinterp.config import from_options, load_preset
from recinterp.models.train import FitConfig
from recinterp.tasks.evaluate import EvalConfig
from recinterp.train_adapter import TrainConfig

ROLES = ("main", "variant")
_OVERRIDE_KEYS = ("by_dataset", "focus", "variant_train", "variant_eval", "train_by_dataset")


def _filled(cls, d: dict | None, where: str) -> dict:
    """{every field of ``cls``: default, updated by ``d``}; unknown names raise, naming ``where``."""
    return asdict(from_options(cls, dict(d or {}), where))


def _merge(base: dict, over: dict | None) -> dict:
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_preset(preset: str, section: str, *, dataset: str | None = None, encoder: str | None = None,
                   role: str = "main", overrides: dict | None = None) -> dict:
    """The section ``section`` of ``preset`` with defaults filled in and the run's overrides applied."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {ROLES}")
    raw = copy.deepcopy(load_preset(preset, section))
    out = {k: v for k, v in raw.items() if k not in _OVERRIDE_KEYS}
    where = f"preset {preset!r}, section {section!r}"
    if section in ("recovery", "residual"):
        layers = [raw.get("by_dataset", {}).get(dataset, {})] if dataset else []
        abl = raw.get("ablation")
        if abl and (dataset, encoder) == (abl.get("dataset"), abl.get("encoder")):
            layers.append(raw.get("focus", {}))
        if role == "variant":
            layers.append({"train": raw.get("variant_train", {}), "eval": raw.get("variant_eval", {})})
        train, ev = dict(raw.get("train", {})), dict(raw.get("eval", {}))
        for layer in layers:
            train.update(layer.get("train", {}))
            ev.update(layer.get("eval", {}))
        out["train"] = _filled(TrainConfig, train, f"{where}, train")
        out["eval"] = _filled(EvalConfig, ev, f"{where}, eval")
        for stage in ("item_stage", "ablation"):
            if stage in raw:
                s = out[stage] = dict(raw[stage])
                s["train"] = _filled(TrainConfig, s.get("train"), f"{where}, {stage}.train")
                if s.get("eval") is not None:
                    s["eval"] = _filled(EvalConfig, s["eval"], f"{where}, {stage}.eval")
    elif section == "recommenders":
        train = {**raw.get("train", {}), **(raw.get("train_by_dataset", {}).get(dataset, {}) if dataset else {})}
        out["train"] = _filled(FitConfig, train, f"{where}, train")
        if "dreamrec" in raw:
            out["dreamrec"] = {**raw["dreamrec"],
                               "train": _filled(FitConfig, raw["dreamrec"].get("train"), f"{where}, dreamrec.train")}
    return _merge(out, overrides)


# -- names and roles of a task notebook's runs ------------------------------------------------
ROUTES = ("end_to_end", "aligned")  # the paper's adapter trained through the LLM; the token-space fit


def adapter_name(a: dict) -> str:
    """An end-to-end adapter's route name: its kind and number of soft tokens ("linear10")."""
    return f"{a['kind']}{a['n_tokens']}"


def variant_name(v: dict) -> str:
    """A residual ablation variant's route name: its input and start ("pair_item", "diff_scratch")."""
    return f"{v['input']}_{'item' if v.get('init') == 'item' else 'scratch'}"


def route_roles(cfg: dict) -> dict[str, str]:
    """route -> its role in the report: the section's ``headline_route`` is ``main``, the other route ``contrast``."""
    head = cfg.get("headline_route", "end_to_end")
    if head not in ROUTES:
        raise ValueError(f"unknown headline_route {head!r}: choose one of {ROUTES}")
    return {r: "main" if r == head else "contrast" for r in ROUTES}


def encoder_role(route_role: str, encoder: str, encoders: list[str]) -> str:
    """The headline is the first encoder (the one notebooks 03 and 05 use); the other encoders on the headline
    route are the encoder comparison, reported beside it with their own controls."""
    return "comparison" if route_role == "main" and encoder != encoders[0] else route_role


def describe(section: str, cfg: dict, datasets: str = "", llm: str = "") -> str:
    """What a task notebook's preset section sets, in lines a reader can check against the paper: datasets,
    encoders, LLM, both routes' budgets, the evaluation (cases, answer length, probe and its chance level)."""
    ev, tr = cfg["eval"], cfg["train"]
    lines = [f"datasets={datasets or cfg['datasets']}  encoders={cfg['encoders']}  llm={llm or cfg['llm']}",
             f"headline route: {cfg.get('headline_route', 'end_to_end')}; token-space route: "
             f"{'on' if (cfg.get('aligned') or {}).get('enabled') else 'off'}"]
    if cfg.get("end_to_end", True) is False:
        lines.append("end-to-end route: off in this preset (the token-space route alone)")
    elif section == "recovery":
        a = cfg["adapters"]
        lines.append(f"end-to-end adapter {adapter_name(a[0])} ({tr['max_steps']} steps, target limit "
                     f"{tr['max_target_tokens']} tokens); variants {[adapter_name(x) for x in a[1:]]} on "
                     f"{cfg.get('variant_datasets', 'every dataset')}")
    else:
        abl = cfg["ablation"]
        lines.append(f"end-to-end route for {cfg.get('end_to_end_encoders') or cfg['encoders']} ({tr['max_steps']} steps, "
                     f"{cfg['adapter']['kind']} adapter, {cfg['adapter']['n_tokens']} soft tokens); ablation on "
                     f"{(abl['dataset'], abl['encoder'])}: {[variant_name(v) for v in abl['variants']] or 'none'}")
    lines.append(f"evaluation: {ev['n_cases']} windows of {ev['split']}, greedy answers of at most {ev['max_new_tokens']} "
                 f"tokens, probe with {ev['n_distractors']} distractors per true title ({', '.join(ev['samplers'])}: "
                 f"chance Hit@1 = 1/{ev['n_distractors'] + 1})")
    return "\n".join(lines)
