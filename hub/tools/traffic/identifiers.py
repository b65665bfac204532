"""Simulated cases' identifiers: real formats, never colliding with each other (so simulated cases are never
merged), and marked as simulated."""

from __future__ import annotations

from dataclasses import dataclass

CASE_NUMBERS = 10_000_000  # case_identifiers is unique below this; the stream wraps around after it
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PNC_CHECK = "ZABCDEFGHJKLMNPQRTUVWXY"


@dataclass(frozen=True)
class CaseIdentifiers:
    case_ref: str
    noms_number: str
    crn: str
    pnc: str


def case_identifiers(number: int) -> CaseIdentifiers:
    """The identifiers of simulated case `number`: real formats, unique for 0 <= number < 10,000,000.

    Each identifier encodes the whole number (the case reference's serial and year, the NOMS number's digits
    and letters, ...), so two numbers never share one. The letters mark them as simulated: "SM" in the case
    reference, S or T leading the NOMS number."""
    if not 0 <= number < CASE_NUMBERS:
        raise ValueError(f"case number must be between 0 and {CASE_NUMBERS - 1}")
    serial, year = number % 100_000, number // 100_000
    force = 1 + number % 43  # one of the 43 police forces of England and Wales: decoration only
    rest, digits = divmod(number, 10_000)  # rest < 1,000
    noms = f"{'ST'[rest // 676]}{digits:04d}{_LETTERS[rest % 676 // 26]}{_LETTERS[rest % 26]}"
    pnc_year = 1990 + number % 10
    pnc_check = _PNC_CHECK[int(f"{pnc_year % 100:02d}{number:07d}") % 23]
    return CaseIdentifiers(
        case_ref=f"{force:02d}SM{serial:05d}{year:02d}",
        noms_number=noms,
        crn=f"{'STUVWXYZQR'[number // 1_000_000]}{number % 1_000_000:06d}",
        pnc=f"{pnc_year}/{number:07d}{pnc_check}",
    )


def removed_noms_number(number: int) -> str:
    """A duplicate prison record's number for case `number` (X or Y first: never a case's own number)."""
    rest, digits = divmod(number, 10_000)
    return f"{'XY'[rest // 676]}{digits:04d}{_LETTERS[rest % 676 // 26]}{_LETTERS[rest % 26]}"
