"""How a section of the settings is read from its flat environment names.

Each setting keeps the environment name it always had (`LLM_PROVIDER_SERVICE_QUEUE_MAX_SIZE`)
while the code reads it from its section (`settings.queue.max_size`): a `Section` names the
prefix its fields share, and a field whose name does not follow it carries its environment
names as a `validation_alias`. `SectionedEnvSource` reads every section under those names and
hands `Settings` flat names (`queue_max_size`), which `nest` moves into their sections; so
`Settings(queue_max_size=3)` and `Settings(queue={"max_size": 3})` say the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

ENV_PREFIX = "LLM_PROVIDER_SERVICE_"


class Section(BaseModel):
    """A group of settings read from `LLM_PROVIDER_SERVICE_<env_prefix><FIELD>`."""

    # No `populate_by_name`: a field with a `validation_alias` is set by those names only,
    # in the environment as in code (`nest` files values under them).
    model_config = ConfigDict(extra="forbid")

    env_prefix: ClassVar[str] = ""


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def env_names(section: type[Section], field: str) -> list[str]:
    """The environment variable names that set `field` of `section`, the first the main one."""
    aliases = _aliases(section.model_fields[field])
    return [a.upper() for a in aliases] or [f"{ENV_PREFIX}{section.env_prefix}{field}".upper()]


def flat_name(section: type[Section], field: str) -> str:
    """`field`'s name among all settings: its main environment name without the prefix."""
    return env_names(section, field)[0].removeprefix(ENV_PREFIX).lower()


def sections(settings: type[BaseModel]) -> dict[str, type[Section]]:
    """The fields of `settings` that are sections, by field name."""
    found = {}
    for name, field in settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, Section):
            found[name] = kind
    return found


def _input_key(section: type[Section], field: str) -> str:
    """The key `section` validates `field` under: its main environment name if it has one
    (sections accept only those, so no other environment name sets it), else its name."""
    return (_aliases(section.model_fields[field]) or [field])[0]


def nest(settings: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every flat name (`queue_max_size`) and every environment name of a
    section's field (`ANTHROPIC_API_KEY`, as `Settings(...)` took them before sections)
    moved into its section. A value given in the section (`queue={"max_size": 3}`) beats
    one under the flat name, and the flat name beats the environment names, in their order."""
    data = dict(data)
    for name, section in sections(settings).items():
        given = data.get(name, {})
        if isinstance(given, Section):
            given = given.model_dump(exclude_unset=True)
        fields = section.model_fields
        values = {_input_key(section, k) if k in fields else k: v for k, v in given.items()}
        for field in fields:
            for key in (flat_name(section, field), *env_names(section, field)):
                if key in data:  # a value given in the section itself comes first
                    values.setdefault(_input_key(section, field), data.pop(key))
        if values or name in data:
            data[name] = values
    return data


def field_for_key(section: type[Section], key: str) -> str:
    """The field an environment source returned `key` for (a field name or an alias)."""
    if key in section.model_fields:
        return key
    for field, info in section.model_fields.items():
        if key.lower() in (a.lower() for a in _aliases(info)):
            return field
    raise KeyError(key)


class SectionedEnvSource(EnvSettingsSource):
    """The environment, read under every setting's flat name, sections included."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._sections = sections(settings_cls)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in self._sections:  # a section is read under its fields' names only
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for section in self._sections.values():
            data.update(self._read(section))
        return data

    def _read(self, section: type[Section]) -> Iterator[tuple[str, Any]]:
        source = EnvSettingsSource(
            section,  # type: ignore[arg-type]  # it reads any model's fields
            case_sensitive=False,
            env_prefix=f"{ENV_PREFIX}{section.env_prefix}",
        )
        try:
            values = source()
        except SettingsError as exc:  # name the setting as the environment does
            message = re.sub(
                r'field "(\w+)"', lambda m: f'field "{flat_name(section, m[1])}"', str(exc)
            )
            raise SettingsError(message) from exc
        for key, value in values.items():
            yield flat_name(section, field_for_key(section, key)), value


def every_env_name(settings: type[BaseModel]) -> dict[str, list[str]]:
    """Every setting of `settings` by flat name, with the environment names that set it."""
    found = {}
    parts = sections(settings)
    for name, field in settings.model_fields.items():
        if name in parts:
            section = parts[name]
            found.update(
                {flat_name(section, f): env_names(section, f) for f in section.model_fields}
            )
        else:
            found[name] = [a.upper() for a in _aliases(field)] or [f"{ENV_PREFIX}{name}".upper()]
    return found
