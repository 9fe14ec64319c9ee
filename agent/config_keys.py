"""Every configuration key, with its type, default and environment variable, generated from the
settings models (agent.config), so `campwatch config keys` cannot fall behind them."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.config import ENV_PREFIX, Settings

_NAMES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", Decimal: "decimal",
                          SecretStr: "secret string", datetime: "datetime (ISO 8601)"}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key: str
    """Dotted path as in the TOML file; `[]` marks an item of a list of tables, `<name>` a table key."""
    type: str
    default: str
    env: str
    """The CAMPWATCH_* variable that sets it; for items of a list of tables, the variable of the list."""
    description: str


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation in _NAMES:
        return _NAMES[annotation]
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        name = " | ".join(_type_name(a) for a in kept)
        return f"{name} (optional)" if len(kept) < len(args) else name
    if origin is tuple:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"table of {_type_name(args[-1])}"
    if get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
        return _type_name(args[0])
    if hasattr(annotation, "__metadata__"):  # Annotated[...]
        return _type_name(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "(the host name)" if info.default_factory.__name__ == "gethostname" else "(computed)"
    value = info.default
    if value is PydanticUndefined:
        return "(required)"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()  # a built-in default is no secret
    if isinstance(value, BaseModel):
        return "(table below)"
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return json.dumps([item.model_dump(mode="json") for item in value])
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, default=str)


def _plain(annotation: Any) -> Any:
    if hasattr(annotation, "__metadata__"):
        return get_args(annotation)[0]
    return annotation


def _walk(model: type[BaseModel], prefix: str, env: str | None, out: list[KeyInfo]) -> None:
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        variable = f"{env}__{name.upper()}" if env is not None and env != ENV_PREFIX.rstrip("_") else (
            f"{ENV_PREFIX}{name.upper()}" if env is not None else "")
        annotation = _plain(info.annotation)
        origin = get_origin(annotation)
        args = get_args(annotation)
        description = (info.description or "").strip().replace("\n", " ")
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _walk(annotation, key + ".", variable, out)
            continue
        item = _plain(args[0]) if origin is tuple and args else None
        if isinstance(item, type) and issubclass(item, BaseModel):
            out.append(KeyInfo(key, "list of tables", _default(info), variable,
                               description or f"[[{key}]] tables, one per item"))
            _walk(item, key + "[].", None, out)
            continue
        value = _plain(args[-1]) if origin is dict and args else None
        if isinstance(value, type) and issubclass(value, BaseModel):
            out.append(KeyInfo(key, "table of tables", _default(info), variable, description))
            _walk(value, key + ".<name>.", f"{variable}__<NAME>" if variable else None, out)
            continue
        out.append(KeyInfo(key, _type_name(annotation), _default(info), variable or "(set the list above)",
                           description))


def setting_keys() -> list[KeyInfo]:
    out: list[KeyInfo] = []
    _walk(Settings, "", ENV_PREFIX.rstrip("_"), out)
    return out
