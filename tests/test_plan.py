"""recinterp.plan.resolve_preset: a preset says only what differs from the defaults; one function resolves it."""
import json
from dataclasses import asdict

import pytest

from recinterp.config import available_presets, load_preset
from recinterp.models.train import FitConfig
from recinterp.plan import resolve_preset
from recinterp.tasks import EvalConfig
from recinterp.train_adapter import TrainConfig

PRESET = {
    "recovery": {"llm": "embedded", "datasets": ["a", "b"], "train": {"max_steps": 5}, "eval": {"n_cases": 7},
                 "by_dataset": {"b": {"train": {"max_steps": 9}, "eval": {"split": "val"}}},
                 "variant_train": {"lr": 0.5}, "variant_eval": {"generate": False}},
    "residual": {"llm": "embedded", "train": {"batch_size": 4}, "eval": {"samplers": ["own"]},
                 "item_stage": {"enabled": True, "train": {"max_steps": 1}},
                 "ablation": {"dataset": "a", "encoder": "sasrec", "train": {"max_steps": 2}, "eval": {"split": "val"}},
                 "focus": {"train": {"max_steps": 3}}},
    "recommenders": {"train": {"epochs": 2}, "train_by_dataset": {"b": {"lr": 0.1}}, "dreamrec": {"train": {}}},
    "data": {"examples": 2},
}


@pytest.fixture()
def preset(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(PRESET))
    return str(path)


def test_defaults_fill_what_the_preset_leaves_out(preset):
    r = resolve_preset(preset, "recovery", dataset="a")
    assert r["train"] == {**asdict(TrainConfig()), "max_steps": 5}
    assert r["eval"] == {**asdict(EvalConfig()), "n_cases": 7}
    assert r["llm"] == "embedded" and "by_dataset" not in r and "variant_train" not in r


def test_overrides_apply_in_order(preset):
    b = resolve_preset(preset, "recovery", dataset="b")
    assert b["train"]["max_steps"] == 9 and b["eval"]["split"] == "val" and b["eval"]["n_cases"] == 7
    v = resolve_preset(preset, "recovery", dataset="b", role="variant", overrides={"train": {"seed": 3}})
    assert (v["train"]["max_steps"], v["train"]["lr"], v["train"]["seed"]) == (9, 0.5, 3)
    assert v["eval"]["generate"] is False
    with pytest.raises(ValueError, match="role"):
        resolve_preset(preset, "recovery", role="ablation")


def test_focus_applies_to_the_ablation_pair_only(preset):
    focus = resolve_preset(preset, "residual", dataset="a", encoder="sasrec")
    other = resolve_preset(preset, "residual", dataset="a", encoder="caser")
    assert focus["train"]["max_steps"] == 3 and other["train"]["max_steps"] is None
    assert focus["train"]["batch_size"] == other["train"]["batch_size"] == 4
    assert focus["item_stage"]["train"]["max_steps"] == 1 and focus["item_stage"]["train"]["lr"] == TrainConfig().lr
    assert focus["ablation"]["eval"]["split"] == "val" and focus["ablation"]["train"]["max_steps"] == 2
    assert "eval" not in focus["item_stage"]


def test_recommenders_and_other_sections(preset):
    b = resolve_preset(preset, "recommenders", dataset="b")
    assert b["train"] == {**asdict(FitConfig()), "epochs": 2, "lr": 0.1}
    assert b["dreamrec"]["train"] == asdict(FitConfig())
    assert resolve_preset(preset, "data") == {"examples": 2}


def test_unknown_options_name_where_they_are(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"recovery": {"train": {"learning_rate": 1}, "eval": {}}}))
    with pytest.raises(ValueError, match=r"recovery.*train.*learning_rate"):
        resolve_preset(str(path), "recovery")


@pytest.mark.parametrize("name", available_presets())
def test_every_shipped_preset_resolves_for_every_run(name):
    for section in ("recovery", "residual"):
        raw = resolve_preset(name, section)
        encoders = raw.get("encoders") or ["sasrec"]
        for d in raw["datasets"]:
            for e in encoders:
                for role in ("main", "variant"):
                    r = resolve_preset(name, section, dataset=d, encoder=e, role=role)
                    # every option is a field of its dataclass, filled in: the dataclass gives the same dict back
                    assert asdict(TrainConfig(**r["train"])) == r["train"]
                    assert asdict(EvalConfig(**r["eval"])) == r["eval"]
                    if role == "variant" and section == "recovery":  # the variants' own settings win
                        over = load_preset(name, section).get("variant_eval", {})
                        assert all(r["eval"][k] == v for k, v in over.items()), (name, d, over)
    for d in resolve_preset(name, "recommenders")["datasets"]:
        FitConfig(**resolve_preset(name, "recommenders", dataset=d)["train"])


@pytest.mark.parametrize("name", ["smoke", "classroom", "cpu", "gpu"])
def test_the_focus_run_can_resume_the_ablations_best_variant(name, tmp_path):
    """Notebook 04 continues the ablation's best variant on the focus pair with the focus settings:
    the two may differ only in what a resume allows (steps, checkpointing), or the run is refused."""
    from recinterp.train_adapter import TrainConfig, check_resume_config

    cfg = resolve_preset(name, "residual")
    abl = cfg["ablation"]
    focus = resolve_preset(name, "residual", dataset=abl["dataset"], encoder=abl["encoder"])
    check_resume_config(abl["train"], TrainConfig(**focus["train"]), tmp_path)
