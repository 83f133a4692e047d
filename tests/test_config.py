import pytest

from etude.config import DataConfig, EncodingConfig, ModelConfig, apply_overrides, from_dict, settings_hash, to_dict
from etude.errors import ConfigError


def test_overrides_parse_by_type():
    cfg = apply_overrides(DataConfig(), ["min_seconds=2.5", "transpose=3", "long_pieces=reject"])
    assert cfg.min_seconds == 2.5 and cfg.transpose == 3 and cfg.long_pieces == "reject"
    enc = apply_overrides(EncodingConfig(), ["--tempos=false"])
    assert enc.tempos is False


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="valid: .*min_seconds"):
        apply_overrides(DataConfig(), ["min_secs=3"])


def test_bad_value_is_a_config_error():
    with pytest.raises(ConfigError, match="int"):
        apply_overrides(DataConfig(), ["transpose=many"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(DataConfig(), ["transpose"])


def test_round_trip_and_hash():
    cfg = DataConfig(seed=7)
    assert from_dict(DataConfig, to_dict(cfg)) == cfg
    assert settings_hash(to_dict(cfg)) == settings_hash(to_dict(DataConfig(seed=7)))
    assert settings_hash(to_dict(cfg)) != settings_hash(to_dict(DataConfig(seed=8)))
    with pytest.raises(ConfigError):
        from_dict(DataConfig, {"nope": 1})


def test_model_description_names_what_each_model_has():
    assert ModelConfig(name="rbm", window=2, head_hidden=150, cd_k=5, persistent=True).describe() == (
        "rbm: 2 frame(s) x 88 keys visible, 150 hidden units, persistent CD-5"
    )
    nade = ModelConfig(name="lstm-nade", layers=1, hidden=256, keep_prob=0.5, head_hidden=150).describe()
    assert nade == "lstm-nade: 1 layers x 256 units, keep_prob 0.50 (dropout 0.50); NADE output, 150 hidden units"
    assert ModelConfig(name="lstm", layers=2, hidden=384, keep_prob=0.7).describe().endswith("(dropout 0.30)")


def test_validate_names_the_setting_and_its_range():
    from etude.config import RunConfig, validate

    validate(RunConfig())  # the defaults are valid
    for key, value, words in [
        ("model", ("keep_prob", 0.0), "model.keep_prob=0.0 is out of range: valid values are in (0, 1]"),
        ("model", ("hidden", 0), "model.hidden=0 is out of range: valid values are >= 1"),
        ("train", ("lr", float("nan")), "train.lr=nan: a finite number is needed"),
        ("train", ("average", 1.0), "train.average=1.0 is out of range: valid values are in [0, 1)"),
        ("train", ("optimizer", "adagrad"), "valid values are one of adam, sgd"),
        ("train", ("iterations", 2.5), "train.iterations takes a int, not 2.5"),
    ]:
        cfg = RunConfig()
        setattr(getattr(cfg, key), *value)
        with pytest.raises(ConfigError) as e:
            validate(cfg)
        assert str(e.value) == words or words in str(e.value)
    cfg = RunConfig()
    cfg.train.lr = 1  # an int where a float is expected is accepted, and stored as a float
    validate(cfg)
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
