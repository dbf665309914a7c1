"""Tenant configuration as text: JSON or YAML in (validated through TenantConfig), YAML out.

Shared by the admin API and the `callintel tenants config` commands, so both accept exactly the
same documents and report the same error locations.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from pipeline.rules.packs import list_packs
from pipeline.rules.validation import card_problems
from schemas.tenant import TenantConfig

Format = Literal["json", "yaml"]
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


class InvalidConfig(ValueError):
    """The document is not a valid TenantConfig; `errors` lists `{loc, msg, type}` per problem."""

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.detail, self.errors = detail, errors


def parse_config(data: bytes | str, *, fmt: Format) -> TenantConfig:
    """A TenantConfig from a JSON or YAML document; raises InvalidConfig."""
    body = _load_json(data) if fmt == "json" else _load_yaml(data)
    if not isinstance(body, dict):
        raise _syntax("the configuration must be a mapping (an object) at the top level")
    _check_storable(body)
    return validate_config(body)


def validate_config(body: dict[str, Any]) -> TenantConfig:
    """TenantConfig.model_validate plus the rule checks a job would otherwise meet later (every
    scorecard usable, every pack shipped), all as InvalidConfig with dotted locations."""
    try:
        config = TenantConfig.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidConfig("the configuration is not valid", errors) from exc
    if errors := _rule_errors(config):
        raise InvalidConfig("the configuration is not valid", errors)
    return config


def _rule_errors(config: TenantConfig) -> list[dict[str, str]]:
    shipped = list_packs()
    errors = [
        {
            "loc": f"packs.{i}",
            "msg": f"no such pack (shipped: {', '.join(shipped)})",
            "type": "unknown_pack",
        }
        for i, name in enumerate(config.packs)
        if name not in shipped
    ]
    for key, card in config.scorecards.items():
        errors += [
            {"loc": f"scorecards.{key}.{path}", "msg": problem, "type": "invalid_scorecard"}
            for path, problem in card_problems(card)
        ]
    return errors


def config_yaml(config: TenantConfig) -> str:
    """The whole configuration as YAML (every field, defaults included, in schema order)."""
    body = config.model_dump(mode="json")
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _load_json(data: bytes | str) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise _syntax(f"not valid JSON: {exc}") from exc


def _load_yaml(data: bytes | str) -> Any:
    try:
        # Aliases could expand a small document into a huge one: a configuration never needs them.
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(data, Loader=yaml.SafeLoader)):
            raise _syntax("YAML aliases (*name) are not allowed")
        return yaml.safe_load(data)
    except (yaml.YAMLError, RecursionError) as exc:
        raise _syntax(f"not valid YAML: {_yaml_problem(exc)}") from exc


def _yaml_problem(exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _check_storable(body: dict[str, Any]) -> None:
    """NaN and NUL cannot be stored (JSON and PostgreSQL refuse them): refuse them here, as input."""
    try:
        text = json.dumps(body, allow_nan=False, default=str)  # default: YAML dates fail later
    except ValueError as exc:
        raise _syntax("numbers must be finite") from exc
    except TypeError as exc:  # a YAML mapping key that is not a string or a number
        raise _syntax(f"unsupported key: {exc}") from exc
    if "\\u0000" in text:
        raise _syntax("text may not contain NUL characters")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _syntax(msg: str) -> InvalidConfig:
    return InvalidConfig(msg, [{"loc": "", "msg": msg, "type": "syntax"}])
