import pytest

from etude.config import DataConfig, EncodingConfig, apply_overrides, from_dict, settings_hash, to_dict
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
