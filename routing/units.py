"""Victim contact units, and which unit a victim or a case belongs to.

Each victim is routed to the unit covering the postcode area of their home postcode. Until a victim is
referred, the case belongs to the unit covering the sentencing court, which must chase the referral. Anything
that cannot be placed (no postcode, an address in Scotland or Northern Ireland, an unknown court) goes to
national triage, so nobody is dropped for want of a unit.

Units, their postcode areas and their courts are reference data (``data/units.json``) that operators edit
without a code change. This module is pure: it interprets data that the caller has already read and parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

DEFAULT_UNITS_FILE = Path(__file__).parent / "data" / "units.json"

# Unit codes become Kafka topic names (vlo.<code>), so they stay short and plain.
_UNIT_CODE = re.compile(r"[A-Z0-9]{2,8}")
_COURT_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,39}")
_POSTCODE_AREA = re.compile(r"[A-Z]{1,2}")
# A full postcode or its outward code alone: both name the area, and a victim record may hold either.
_POSTCODE = re.compile(r"([A-Z]{1,2})[0-9][A-Z0-9]?(?:[0-9][A-Z]{2})?")


@dataclass(frozen=True)
class Unit:
    """A victim contact unit; ``code`` also names its queue topic ``vlo.<code>``."""

    code: str
    name: str
    region: str


# eq=False: the indexes are mappings, which cannot be hashed, so compare directories by identity.
@dataclass(frozen=True, eq=False)
class UnitDirectory:
    """The units and what each covers. Build it with :meth:`from_mapping`, which validates the data."""

    triage: Unit
    regional_units: tuple[Unit, ...]
    units_by_area: Mapping[str, Unit]
    units_by_court_code: Mapping[str, Unit]
    units_by_court_name: Mapping[str, Unit]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> UnitDirectory:
        """Build a directory from parsed ``units.json`` data.

        Raises ValueError naming the offending entry when a unit code is malformed or used twice, or when a
        postcode area or court is claimed by more than one unit.
        """
        if not isinstance(data, Mapping):
            raise ValueError("unit directory: expected a mapping with 'national_triage' and 'regions'")

        triage_entry = _mapping(data.get("national_triage"), "unit directory: 'national_triage'")
        for key in ("postcode_areas", "courts"):
            if triage_entry.get(key):
                # Triage takes whatever no unit covers; giving it areas or courts would hide a gap.
                raise ValueError(f"national_triage: must not list {key}; assign them to a regional unit")
        triage = Unit(
            code=_unit_code(triage_entry.get("code"), "national_triage"),
            name=_text(triage_entry.get("name"), "national_triage: 'name'"),
            region=_text(triage_entry.get("region", "National"), "national_triage: 'region'"),
        )

        units_by_code: dict[str, Unit] = {triage.code: triage}
        regional: list[Unit] = []
        by_area: dict[str, Unit] = {}
        by_court_code: dict[str, Unit] = {}
        by_court_name: dict[str, tuple[Unit, str]] = {}
        region_names: set[str] = set()

        regions = _list(data.get("regions"), "unit directory: 'regions'")
        if not regions:
            raise ValueError("unit directory: 'regions' is empty")
        for index, raw_region in enumerate(regions):
            region_entry = _mapping(raw_region, f"regions[{index}]")
            region = _text(region_entry.get("name"), f"regions[{index}]: 'name'")
            if region in region_names:
                raise ValueError(f"region {region!r} appears more than once")
            region_names.add(region)

            unit_entries = _list(region_entry.get("units"), f"region {region!r}: 'units'")
            if not unit_entries:
                raise ValueError(f"region {region!r} has no units")
            for position, raw_unit in enumerate(unit_entries):
                unit_entry = _mapping(raw_unit, f"region {region!r}: units[{position}]")
                unit = Unit(
                    code=_unit_code(unit_entry.get("code"), f"region {region!r}: units[{position}]"),
                    name=_text(unit_entry.get("name"), f"unit {unit_entry.get('code')!r}: 'name'"),
                    region=region,
                )
                if unit.code in units_by_code:
                    other = units_by_code[unit.code]
                    raise ValueError(
                        f"duplicate unit code {unit.code!r}: used by {other.name!r} and {unit.name!r}"
                    )
                units_by_code[unit.code] = unit
                regional.append(unit)

                areas = _list(unit_entry.get("postcode_areas", []), f"unit {unit.code!r}: 'postcode_areas'")
                for area in areas:
                    if not isinstance(area, str) or not _POSTCODE_AREA.fullmatch(area):
                        raise ValueError(
                            f"unit {unit.code!r}: postcode area {area!r} must be 1-2 uppercase letters"
                        )
                    if area in by_area:
                        raise ValueError(
                            f"postcode area {area!r} is assigned to more than one unit: "
                            f"{by_area[area].code!r} and {unit.code!r}"
                        )
                    by_area[area] = unit

                courts = _list(unit_entry.get("courts", []), f"unit {unit.code!r}: 'courts'")
                for number, raw_court in enumerate(courts):
                    where = f"unit {unit.code!r}: courts[{number}]"
                    court = _mapping(raw_court, where)
                    code = court.get("code")
                    if not isinstance(code, str) or not _COURT_CODE.fullmatch(code):
                        raise ValueError(
                            f"{where}: court code {code!r} must be uppercase letters, digits and hyphens"
                        )
                    if code in by_court_code:
                        raise ValueError(
                            f"court code {code!r} is assigned to more than one unit or court: "
                            f"{by_court_code[code].code!r} and {unit.code!r}"
                        )
                    by_court_code[code] = unit

                    names = [_text(court.get("name"), f"court {code!r}: 'name'")]
                    for alias in _list(court.get("aliases", []), f"court {code!r}: 'aliases'"):
                        names.append(_text(alias, f"court {code!r}: alias"))
                    for name in names:
                        key = _court_key(name)
                        if not key:
                            raise ValueError(f"court {code!r}: name {name!r} does not name a place")
                        if key in by_court_name:
                            other_unit, other_code = by_court_name[key]
                            raise ValueError(
                                f"court name {name!r} matches more than one court: "
                                f"{other_code!r} ({other_unit.code}) and {code!r} ({unit.code})"
                            )
                        by_court_name[key] = (unit, code)

        return cls(
            triage=triage,
            regional_units=tuple(regional),
            units_by_area=MappingProxyType(by_area),
            units_by_court_code=MappingProxyType(by_court_code),
            units_by_court_name=MappingProxyType({key: unit for key, (unit, _) in by_court_name.items()}),
        )

    @property
    def national_triage(self) -> Unit:
        """Where anything goes that no regional unit covers."""
        return self.triage

    @property
    def units(self) -> tuple[Unit, ...]:
        """Every unit, regional ones in file order, then national triage."""
        return (*self.regional_units, self.triage)

    def resolve_unit(self, postcode: str | None) -> Unit:
        """The unit covering the victim's home postcode; national triage when it cannot be placed."""
        area = postcode_area(postcode)
        if area is None:
            return self.triage
        return self.units_by_area.get(area, self.triage)

    def unit_for_court(self, court: str | None) -> Unit:
        """The unit covering a court, given its code or its name; national triage when unknown."""
        if not isinstance(court, str) or not court.strip():
            return self.triage
        unit = self.units_by_court_code.get(court.strip().upper())
        if unit is None:
            unit = self.units_by_court_name.get(_court_key(court))
        return unit if unit is not None else self.triage

    def unit_by_code(self, code: str | None) -> Unit | None:
        """The unit with this code (any case), national triage included; None if there is none."""
        if not isinstance(code, str):
            return None
        wanted = code.strip().upper()
        return next((unit for unit in self.units if unit.code == wanted), None)


def postcode_area(postcode: str | None) -> str | None:
    """The postcode area ("SW1A 1AA" -> "SW"); None if this is not a plausible UK postcode.

    Case and spacing are ignored, and an outward code on its own ("SW1A") is accepted.
    """
    if not isinstance(postcode, str):
        return None
    match = _POSTCODE.fullmatch("".join(postcode.split()).upper())
    return match.group(1) if match else None


def _court_key(name: str) -> str:
    """Fold a court name so that spelling variants meet.

    "The Crown Court at Kingston-upon-Thames", "Kingston upon Thames Crown Court" and "kingston upon thames"
    all give "kingston upon thames": sources differ in case, punctuation and whether they say "Crown Court".
    """
    text = re.sub(r"[^a-z0-9]+", " ", name.lower().replace("'", "").replace("\u2019", "")).strip()
    text = re.sub(r"^(the )?crown court at ", "", text)
    text = re.sub(r"\bcrown court\b", " ", text)
    return " ".join(text.split())


def _unit_code(value: object, where: str) -> str:
    if not isinstance(value, str) or not _UNIT_CODE.fullmatch(value):
        raise ValueError(f"{where}: unit code {value!r} must be 2-8 uppercase letters or digits")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected non-blank text, got {value!r}")
    return value.strip()


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)
