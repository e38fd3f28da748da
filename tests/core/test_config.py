from __future__ import annotations

import pytest

from headway.config.load import load, parse
from headway.errors import ConfigError

BASE = """
providers:
  p: {kind: sim}
models:
  a: {provider: p, model: a}
  b: {provider: p, model: b}
routes:
  default: {chain: [a, b]}
"""


def test_embedded_default_loads() -> None:
    runtime = load(env={})
    assert "default" in runtime.routes
    assert runtime.routes["default"].chain == ("sim-large", "sim-small")
    assert not runtime.auth_enabled


def test_unknown_chain_member_names_its_path() -> None:
    text = BASE.replace("[a, b]", "[a, b, c]")
    with pytest.raises(ConfigError) as err:
        load(text=text, env={})
    assert err.value.path == "routes.default.chain[2]"
    assert "unknown model 'c'" in str(err.value)


def test_duplicate_and_empty_chains_are_rejected() -> None:
    with pytest.raises(ConfigError) as dup:
        load(text=BASE.replace("[a, b]", "[a, a]"), env={})
    assert dup.value.path == "routes.default.chain[1]"
    with pytest.raises(ConfigError) as empty:
        load(text=BASE.replace("[a, b]", "[]"), env={})
    assert empty.value.path == "routes.default.chain"


def test_schema_errors_name_the_path() -> None:
    with pytest.raises(ConfigError) as err:
        load(text=BASE + "server: {port: not-a-port}\n", env={})
    assert err.value.path == "server.port"
    with pytest.raises(ConfigError) as typo:
        load(text=BASE + "server: {prot: 1}\n", env={})
    assert typo.value.path == "server.prot"


def test_unknown_provider_reference() -> None:
    with pytest.raises(ConfigError) as err:
        load(text=BASE.replace("a: {provider: p", "a: {provider: q"), env={})
    assert err.value.path == "models.a.provider"


def test_env_references_are_substituted_and_missing_ones_named() -> None:
    text = BASE + "server: {master_key: '${HW_KEY}', host: '${HW_HOST:-0.0.0.0}'}\n"
    runtime = load(text=text, env={"HW_KEY": "sekrit"})
    assert runtime.file.server.master_key == "sekrit"
    assert runtime.file.server.host == "0.0.0.0"
    assert runtime.auth_enabled
    with pytest.raises(ConfigError) as err:
        load(text=text, env={})
    assert err.value.path == "server.master_key"
    assert "HW_KEY" in str(err.value)


def test_master_key_from_environment() -> None:
    runtime = load(text=BASE, env={"HEADWAY_MASTER_KEY": "k"})
    assert runtime.file.server.master_key == "k"


def test_explicit_zero_is_not_unset() -> None:
    cfg = parse(BASE + "server: {port: 0}\n", env={})
    assert cfg.server.port == 0


def test_bad_yaml_and_non_mapping() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse("a: [1, 2", env={})
    with pytest.raises(ConfigError, match="mapping"):
        parse("- 1\n- 2\n", env={})


def test_missing_file_is_a_config_error(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load("/nonexistent/headway.yaml", env={})


def test_route_may_not_shadow_a_model() -> None:
    text = BASE + "  a: {chain: [b]}\n"
    with pytest.raises(ConfigError) as err:
        load(text=text, env={})
    assert err.value.path == "routes.a"


def test_routing_table_must_name_known_routes() -> None:
    with pytest.raises(ConfigError) as err:
        load(text=BASE + "routing: {code: nowhere}\n", env={})
    assert err.value.path == "routing.code"
