"""The OCPP 2.0.1 device model store: components, variables, attributes (Part 1 §4
"Device model"; Part 2 §2.1, B05–B08).

A *definition* (:class:`VariableDef`) says what a variable is: component, variable,
characteristics, and which attributes (Actual / Target / MinSet / MaxSet) it has with their
mutability, persistence and constancy. The store holds the *values*, in three layers like
the 1.6 configuration:

1. the definition's default (``AttributeDef.default``),
2. the technician's default from ``[ocpp201.variables]`` in the TOML
   (:mod:`ocpp_client.v201.toml_defaults`),
3. a value written at run time — by the CSMS (SetVariables) or by the station (e.g.
   AvailabilityState) — kept in the ``ocpp201_variable_attributes`` table when the
   attribute is ``persistent``.

A persisted value wins until the TOML default for that attribute changes (the technician's
edit is newer). Every value is validated against the characteristics before it is stored
(:func:`ocpp_client.v201.characteristics.validate_value`). Names compare case-insensitively
(ComponentType / VariableType: "Case Insensitive").
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from evse.state_db import transaction
from ocpp_client.v201.characteristics import Characteristics, InvalidValue, validate_value

_log = logging.getLogger(__name__)


class AttributeType(StrEnum):
    """AttributeEnumType (OCPP 2.0.1 Part 2 §2.2)."""

    ACTUAL = "Actual"
    TARGET = "Target"
    MIN_SET = "MinSet"
    MAX_SET = "MaxSet"


class Mutability(StrEnum):
    """MutabilityEnumType (OCPP 2.0.1 Part 2 §2.2)."""

    READ_ONLY = "ReadOnly"
    WRITE_ONLY = "WriteOnly"
    READ_WRITE = "ReadWrite"


@dataclass(frozen=True)
class ComponentRef:
    """ComponentType: name, optional instance, optional EVSE id and connector id."""

    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    def key(self) -> tuple[str, str, int, int]:
        """Case-insensitive identity (absent parts as "" / 0: EVSE and connector ids are > 0)."""
        return (self.name.casefold(), (self.instance or "").casefold(), self.evse_id or 0,
                self.connector_id or 0)

    def to_payload(self) -> dict[str, Any]:
        """ComponentType as an OCPP JSON object."""
        out: dict[str, Any] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        if self.evse_id is not None:
            evse: dict[str, Any] = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connectorId"] = self.connector_id
            out["evse"] = evse
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ComponentRef:
        """Parse a ComponentType JSON object (already schema-valid)."""
        evse = payload.get("evse") or {}
        return cls(str(payload["name"]), payload.get("instance"), evse.get("id"),
                   evse.get("connectorId"))

    def __str__(self) -> str:
        text = self.name + (f"[{self.instance}]" if self.instance is not None else "")
        if self.evse_id is not None:
            text += f"@{self.evse_id}"
            if self.connector_id is not None:
                text += f"/{self.connector_id}"
        return text


@dataclass(frozen=True)
class VariableRef:
    """VariableType: name and optional instance."""

    name: str
    instance: str | None = None

    def key(self) -> tuple[str, str]:
        return (self.name.casefold(), (self.instance or "").casefold())

    def to_payload(self) -> dict[str, Any]:
        """VariableType as an OCPP JSON object."""
        out: dict[str, Any] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> VariableRef:
        return cls(str(payload["name"]), payload.get("instance"))

    def __str__(self) -> str:
        return self.name + (f"[{self.instance}]" if self.instance is not None else "")


@dataclass(frozen=True)
class AttributeDef:
    """One VariableAttribute: type, mutability, persistence, constancy, default value.

    ``default`` is the canonical wire text (None: no value until one is written).
    """

    type: AttributeType = AttributeType.ACTUAL
    mutability: Mutability = Mutability.READ_WRITE
    persistent: bool = True
    constant: bool = False
    default: str | None = None


@dataclass(frozen=True)
class VariableDef:
    """What one component variable is.

    Attributes:
        required: the specification marks it required for its component (reported even
            when no value is set; a missing default is a definition error).
        reboot_required: a CSMS change is stored and takes effect after a reboot
            (SetVariables answers RebootRequired, B05.FR.08).
        runtime: the station sets the Actual value while running (e.g. AvailabilityState);
            the TOML may not set it (other attributes, e.g. EVSE Power MaxSet, it may).
        source: where the name, type and required flag come from (spec clause).
    """

    component: ComponentRef
    variable: VariableRef
    characteristics: Characteristics
    attributes: tuple[AttributeDef, ...] = (AttributeDef(),)
    required: bool = False
    reboot_required: bool = False
    runtime: bool = False
    source: str = ""

    def attribute(self, attribute_type: AttributeType) -> AttributeDef | None:
        for attr in self.attributes:
            if attr.type is attribute_type:
                return attr
        return None

    def key(self) -> tuple[tuple[str, str, int, int], tuple[str, str]]:
        return (self.component.key(), self.variable.key())

    def __str__(self) -> str:
        return f"{self.component}.{self.variable}"


#: ``listener(definition, attribute type, new value text)`` after a value changed.
ChangeListener = Callable[[VariableDef, AttributeType, "str | None"], None]

#: Key of a default: (component, variable, attribute type).
AttributeKey = tuple[ComponentRef, VariableRef, AttributeType]

TABLE = "ocpp201_variable_attributes"


#: The device model's table. Columns: the component identity (name, instance "" when
#: absent, evse_id / connector_id 0 when absent), the variable identity, the attribute type,
#: the canonical value text and the TOML default in force when the value was written (NULL:
#: none).
CREATE_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " component TEXT NOT NULL, component_instance TEXT NOT NULL,"
    " evse_id INTEGER NOT NULL, connector_id INTEGER NOT NULL,"
    " variable TEXT NOT NULL, variable_instance TEXT NOT NULL,"
    " attribute TEXT NOT NULL, value TEXT, toml_default TEXT,"
    " PRIMARY KEY (component, component_instance, evse_id, connector_id, variable,"
    " variable_instance, attribute))"
)


def migrate_device_model(db: sqlite3.Connection) -> None:
    """Create the device model's table (schema step 1; idempotent; does not commit, so it
    can run inside a migration's transaction)."""
    db.execute(CREATE_TABLE_SQL)


#: Schema steps of this module's table, oldest first (step n brings it to version n), for
#: the state database's ``PRAGMA user_version`` migration runner.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (migrate_device_model,)


@dataclass
class _Slot:
    definition: VariableDef
    attribute: AttributeDef
    toml_default: str | None = None
    written: bool = False  # a run-time value overrides the defaults
    value: str | None = None
    provider: Callable[[], str | None] | None = field(default=None, repr=False)

    def current(self) -> str | None:
        if self.provider is not None:
            return self.provider()
        if self.written:
            return self.value
        if self.toml_default is not None:
            return self.toml_default
        return self.attribute.default


class DeviceModel:
    """The live component/variable store, backed by ``ocpp201_variable_attributes``.

    Args:
        db: the state database (autocommit connection from ``evse.state_db``).
        definitions: every variable of this station (see
            :func:`ocpp_client.v201.standard_components.station_definitions`).
        toml_defaults: canonical default texts from ``[ocpp201.variables]`` (see
            :func:`ocpp_client.v201.toml_defaults.parse_variable_defaults`).

    Raises:
        ValueError: two definitions share a component/variable, or a definition's default
            does not fit its own characteristics.
    """

    def __init__(self, db: sqlite3.Connection, definitions: Iterable[VariableDef],
                 toml_defaults: Mapping[AttributeKey, str] | None = None) -> None:
        self._db = db
        self._defs: dict[tuple[Any, ...], VariableDef] = {}
        self._components: dict[tuple[str, str, int, int], ComponentRef] = {}
        self._slots: dict[tuple[Any, ...], _Slot] = {}
        self._listeners: list[ChangeListener] = []
        for definition in definitions:
            if definition.key() in self._defs:
                raise ValueError(f"{definition} is defined twice")
            self._defs[definition.key()] = definition
            self._components.setdefault(definition.component.key(), definition.component)
            for attr in definition.attributes:
                if attr.default is not None:
                    try:
                        validate_value(definition.characteristics, attr.default)
                    except InvalidValue as exc:
                        raise ValueError(f"{definition} {attr.type.value} default "
                                         f"{attr.default!r}: expected {exc.expected}") from None
                self._slots[(*definition.key(), attr.type)] = _Slot(definition, attr)
        for (component, variable, attribute_type), text in (toml_defaults or {}).items():
            slot = self._slots.get((component.key(), variable.key(), attribute_type))
            if slot is None:
                raise ValueError(f"{component}.{variable}:{attribute_type.value} is not defined")
            slot.toml_default = text
        migrate_device_model(db)
        self._load()

    # -- lookup ---------------------------------------------------------------------------

    def definitions(self) -> list[VariableDef]:
        """Every definition, in the order given."""
        return list(self._defs.values())

    def has_component(self, component: ComponentRef) -> bool:
        return component.key() in self._components

    def components(self) -> list[ComponentRef]:
        return list(self._components.values())

    def definition(self, component: ComponentRef | str,
                   variable: VariableRef | str) -> VariableDef | None:
        """The definition of ``component.variable`` (strings: no instance, no EVSE)."""
        return self._defs.get((_component(component).key(), _variable(variable).key()))

    def _slot(self, component: ComponentRef | str, variable: VariableRef | str,
              attribute: AttributeType) -> _Slot:
        slot = self._slots.get((_component(component).key(), _variable(variable).key(),
                                attribute))
        if slot is None:
            raise KeyError(f"{_component(component)}.{_variable(variable)}:{attribute.value}"
                           " is not in the device model")
        return slot

    # -- reading --------------------------------------------------------------------------

    def get(self, component: ComponentRef | str, variable: VariableRef | str,
            attribute: AttributeType = AttributeType.ACTUAL) -> str | None:
        """Current value text of an attribute (None: no value).

        Raises:
            KeyError: no such component / variable / attribute.
        """
        return self._slot(component, variable, attribute).current()

    def get_int(self, component: ComponentRef | str, variable: VariableRef | str,
                attribute: AttributeType = AttributeType.ACTUAL) -> int:
        """Integer value (KeyError when absent, ValueError when it has no value)."""
        return int(self._required(component, variable, attribute))

    def get_decimal(self, component: ComponentRef | str, variable: VariableRef | str,
                    attribute: AttributeType = AttributeType.ACTUAL) -> float:
        return float(self._required(component, variable, attribute))

    def get_bool(self, component: ComponentRef | str, variable: VariableRef | str,
                 attribute: AttributeType = AttributeType.ACTUAL) -> bool:
        return self._required(component, variable, attribute) == "true"

    def get_list(self, component: ComponentRef | str, variable: VariableRef | str,
                 attribute: AttributeType = AttributeType.ACTUAL) -> list[str]:
        """Items of a list value (empty list for an empty or absent value)."""
        text = self.get(component, variable, attribute) or ""
        return [item for item in text.split(",") if item]

    def _required(self, component: ComponentRef | str, variable: VariableRef | str,
                  attribute: AttributeType) -> str:
        value = self.get(component, variable, attribute)
        if value is None:
            raise ValueError(f"{_component(component)}.{_variable(variable)} has no value")
        return value

    # -- writing --------------------------------------------------------------------------

    def set(self, component: ComponentRef | str, variable: VariableRef | str, text: str,
            attribute: AttributeType = AttributeType.ACTUAL) -> str:
        """Validate and store a value (any mutability: the caller decides who may write),
        persist it when the attribute is persistent, then notify the listeners.

        Returns the canonical text stored.

        Raises:
            KeyError: no such component / variable / attribute.
            InvalidValue: the value does not fit the characteristics.
            ValueError: the value is provided by a live source (see :meth:`provide`).
        """
        slot = self._slot(component, variable, attribute)
        if slot.provider is not None:
            raise ValueError(f"{slot.definition} is read from a live source")
        value = validate_value(slot.definition.characteristics, text)
        if slot.written and slot.value == value:
            return value
        if slot.attribute.persistent:
            d = slot.definition
            with transaction(self._db):
                self._db.execute(
                    f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.component.name, d.component.instance or "", d.component.evse_id or 0,
                     d.component.connector_id or 0, d.variable.name, d.variable.instance or "",
                     attribute.value, value, slot.toml_default))
        slot.written, slot.value = True, value
        self._notify(slot.definition, attribute, value)
        return value

    def provide(self, component: ComponentRef | str, variable: VariableRef | str,
                source: Callable[[], str | None],
                attribute: AttributeType = AttributeType.ACTUAL) -> None:
        """Read the attribute from ``source()`` on every get (live values such as
        ClockCtrlr.DateTime or LocalAuthListCtrlr.Entries). ``source`` returns canonical
        text (None: no value). Raises KeyError for an unknown attribute."""
        self._slot(component, variable, attribute).provider = source

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(definition, attribute type, value)`` after every stored change."""
        self._listeners.append(listener)

    def on_variable_change(self, component: ComponentRef | str, variable: VariableRef | str,
                           callback: Callable[[str | None], None],
                           attribute: AttributeType = AttributeType.ACTUAL) -> None:
        """Call ``callback(value)`` after ``component.variable`` changes (e.g. apply a new
        HeartbeatInterval at once). Raises KeyError for an unknown attribute."""
        target = self._slot(component, variable, attribute).definition

        def listener(definition: VariableDef, attr: AttributeType, value: str | None) -> None:
            if definition is target and attr is attribute:
                callback(value)

        self._listeners.append(listener)

    def _notify(self, definition: VariableDef, attribute: AttributeType,
                value: str | None) -> None:
        for listener in self._listeners:
            try:
                listener(definition, attribute, value)
            except Exception:
                # The value is stored; one failing consumer must not hide it from the others.
                _log.exception("device model listener failed for %s", definition)

    # -- persistence ----------------------------------------------------------------------

    def _load(self) -> None:
        rows = self._db.execute(
            f"SELECT component, component_instance, evse_id, connector_id, variable,"
            f" variable_instance, attribute, value, toml_default FROM {TABLE}").fetchall()
        for (comp, comp_inst, evse_id, conn_id, var, var_inst, attr, value,
             toml_default) in rows:
            try:
                attribute = AttributeType(attr)
            except ValueError:
                continue
            component = ComponentRef(comp, comp_inst or None, evse_id or None, conn_id or None)
            variable = VariableRef(var, var_inst or None)
            slot = self._slots.get((component.key(), variable.key(), attribute))
            if slot is None or not slot.attribute.persistent:
                continue  # a variable this build no longer defines: keep the row, ignore it
            stale = toml_default != slot.toml_default
            try:
                value = validate_value(slot.definition.characteristics, value)
            except (InvalidValue, TypeError):
                stale = True  # limits changed since it was stored
            if stale:
                self._db.execute(
                    f"DELETE FROM {TABLE} WHERE component = ? AND component_instance = ?"
                    " AND evse_id = ? AND connector_id = ? AND variable = ?"
                    " AND variable_instance = ? AND attribute = ?",
                    (comp, comp_inst, evse_id, conn_id, var, var_inst, attr))
                continue
            slot.written, slot.value = True, value


def _component(component: ComponentRef | str) -> ComponentRef:
    return ComponentRef(component) if isinstance(component, str) else component


def _variable(variable: VariableRef | str) -> VariableRef:
    return VariableRef(variable) if isinstance(variable, str) else variable
