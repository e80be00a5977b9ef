from pathlib import Path

import pytest

from darkaction.config import Config, load_config, save_config
from darkaction.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["paper", "cpu", "demo"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert isinstance(cfg, Config)
    assert cfg.name == name


def test_paper_config_holds_the_papers_settings():
    cfg = load_config(CONFIGS / "paper.yaml")
    s = cfg.sampling
    assert (s.strategy, s.T, s.beta, s.gamma, s.alpha, s.test_views) == ("delta", 64, 0.0, 1.5, 4.0, 5)
    assert (cfg.augment.height, cfg.augment.width) == (112, 112)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.loss) == (2, 300, "focal")
    assert (cfg.train.optimizer, cfg.train.scheduler) == ("ranger", "onecycle")
    m = cfg.model
    assert (m.backbone, m.head, m.bert_hidden, m.bert_layers, m.bert_heads) == ("r2plus1d_34", "bert", 512, 1, 8)
    t = cfg.enhance.train
    assert (t.w_tv, t.w_col, t.w_spa, t.epochs, t.lr, t.n_frames) == (200.0, 5.0, 10.0, 100, 1e-4, 2500)
    assert cfg.data.val_fraction == pytest.approx(0.2)
    assert (t.loss_form, m.time_norm, m.pretrained) == ("paper", "l2", "required")  # time_norm: experiment timenorm


def test_paper_config_marks_every_setting_the_paper_does_not_give():
    lines = (CONFIGS / "paper.yaml").read_text().splitlines()
    for key in ("focal_gamma", "focal_alpha", "lr", "bn_momentum", "bert_keep", "cls_dropout", "precise_bn",
                "rotation", "translation"):  # fmt: skip
        line = next(ln for ln in lines if ln.startswith(f"  {key}:"))  # top-level sections (2 spaces)
        assert "paper" in line and ("not" in line or "no value" in line), line


def test_dotted_overrides_are_typed():
    cfg = load_config(CONFIGS / "cpu.yaml", ["train.epochs=3", "sampling.alpha=2", "model.se=true"])
    assert cfg.train.epochs == 3
    assert cfg.sampling.alpha == 2.0 and isinstance(cfg.sampling.alpha, float)
    assert cfg.model.se is True


def test_override_of_list_of_sections():
    cfg = load_config(None, ["data.extra_train=[{format: hmdb51, root: /h, classes: [run, walk]}]"])
    assert cfg.data.extra_train[0].format == "hmdb51"
    assert cfg.data.extra_train[0].classes == ["run", "walk"]


@pytest.mark.parametrize(
    "override, hint",
    [("train.epoch=3", "train.epochs"), ("sampling.gama=1", "sampling.gamma"), ("modle.head=x", "model")],
)
def test_unknown_key_names_it_and_suggests(override, hint):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    bad_key = override.split("=")[0]
    assert bad_key.split(".")[0] in str(e.value)
    assert hint in str(e.value)


def test_unknown_key_in_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  batch_sise: 4\n")
    with pytest.raises(ConfigError, match="train.batch_sise.*train.batch_size"):
        load_config(p)


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match="sampling.T"):
        load_config(None, ["sampling.T=abc"])
    with pytest.raises(ConfigError, match="must look like"):
        load_config(None, ["train.epochs"])


def test_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "paper.yaml", ["train.epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    "override, field, valid",
    [
        ("model.head=bret", "model.head", "bert, tgap, mran"),
        ("sampling.strategy=deltaa", "sampling.strategy", "delta, constant, length, variable, uniform, consecutive"),
        ("data.source.format=arid", "data.source.format", "synth, arid-csv, arid-v1"),
        ("train.optimizer=sgd", "train.optimizer", "ranger, adamw"),
        ("augment.normalize=imagenet", "augment.normalize", "kinetics, arid, none, index, clip"),
        ("enhance.method=retinex", "enhance.method", "zero-dce, zero-dce++, gamma, identity, external"),
    ],
)
def test_an_invalid_choice_names_the_field_and_lists_the_valid_values_at_load(override, field, valid):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value).startswith(f"{field}: ") and valid in str(e.value)


def test_choices_accept_their_values_and_numbers_or_auto_for_alpha():
    cfg = load_config(None, ["sampling.test_strategy=", "sampling.alpha=auto", "model.time_norm=rms"])
    assert cfg.sampling.test_strategy == "" and cfg.sampling.alpha == "auto" and cfg.model.time_norm == "rms"
    assert load_config(None, ["sampling.alpha=4"]).sampling.alpha == 4.0
    with pytest.raises(ConfigError, match="sampling.alpha"):
        load_config(None, ["sampling.alpha=often"])
