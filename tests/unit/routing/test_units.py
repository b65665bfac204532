"""Unit resolution: which victim contact unit a victim's postcode or a sentencing court belongs to."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from routing.units import DEFAULT_UNITS_FILE, Unit, UnitDirectory, postcode_area

UNITS_FILE = Path(__file__).resolve().parents[3] / "routing" / "data" / "units.json"

REGIONS = {
    "North East": "NE",
    "North West": "NW",
    "Yorkshire and the Humber": "YH",
    "Greater Manchester": "GM",
    "East Midlands": "EM",
    "West Midlands": "WM",
    "East of England": "EE",
    "London": "LON",
    "Kent, Surrey and Sussex": "KSS",
    "South West": "SW",
    "South Central": "SC",
    "Wales": "WAL",
}

# Every postcode area wholly or mainly in England or Wales, by the unit it belongs to. Removing or moving an
# area in units.json must fail here: its victims would silently reach national triage or the wrong unit.
EXPECTED_AREAS = {
    "NE": "NE SR DH TS DL",
    "NW": "L WA CH CW PR FY LA BB CA",
    "YH": "LS BD HD HX WF HG YO S DN HU",
    "GM": "M BL OL SK WN",
    "EM": "NG DE LE LN NN",
    "WM": "B CV DY WS WV ST TF SY WR HR",
    "EE": "NR IP CB PE CO CM SS SG AL LU WD",
    "LON": "E EC N NW SE SW W WC BR CR EN HA IG RM SM TW UB",
    "KSS": "BN RH TN ME CT GU KT DA",
    "SW": "BS BA TA EX PL TR TQ DT BH SP SN GL",
    "SC": "OX RG SL HP MK SO PO",
    "WAL": "CF SA NP LD LL",
}
AREA_TO_UNIT = {area: unit for unit, areas in EXPECTED_AREAS.items() for area in areas.split()}
# Areas outside England and Wales: nothing routes them to a regional unit.
OUTSIDE_AREAS = {
    "Scotland": "AB DD DG EH FK G HS IV KA KW KY ML PA PH TD ZE",
    "Northern Ireland": "BT",
    "Crown Dependencies": "GY JE IM",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return json.loads(UNITS_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def directory(raw: dict[str, Any]) -> UnitDirectory:
    return UnitDirectory.from_mapping(raw)


def _all_courts(raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (unit["code"], court)
        for region in raw["regions"]
        for unit in region["units"]
        for court in unit.get("courts", [])
    ]


# --- the shipped reference data ----------------------------------------------------------------------


def test_default_units_file_is_the_shipped_file() -> None:
    assert DEFAULT_UNITS_FILE.resolve() == UNITS_FILE
    assert UNITS_FILE.is_file()


def test_shipped_file_has_the_twelve_probation_regions(raw: dict[str, Any]) -> None:
    assert [region["name"] for region in raw["regions"]] == list(REGIONS)
    assert all(region["units"] for region in raw["regions"])


def test_shipped_file_explains_its_choices(raw: dict[str, Any]) -> None:
    notes = " ".join(raw["notes"])
    for area in ("CH", "SY", "DA", "KT", "TD"):
        assert re.search(rf"\b{area}\b", notes), f"notes do not explain {area}"


def test_each_region_has_its_unit(directory: UnitDirectory) -> None:
    by_region = {unit.region: unit.code for unit in directory.units if unit != directory.national_triage}
    assert by_region == REGIONS


def test_units_include_national_triage(directory: UnitDirectory) -> None:
    triage = directory.national_triage
    assert triage == Unit(code="NATIONAL", name="National victim contact triage", region="National")
    assert triage in directory.units
    assert len(directory.units) == len(REGIONS) + 1


def test_unit_codes_are_usable_as_topic_names(directory: UnitDirectory) -> None:
    codes = [unit.code for unit in directory.units]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[A-Z0-9]{2,8}", code) for code in codes)
    assert len({unit.name for unit in directory.units}) == len(codes)


def test_england_and_wales_has_104_postcode_areas() -> None:
    # 121 UK geographic areas, less 16 Scottish and Northern Ireland's BT.
    assert len(AREA_TO_UNIT) == 104


def test_every_england_and_wales_postcode_area_is_mapped_to_its_unit(
    raw: dict[str, Any], directory: UnitDirectory
) -> None:
    shipped = {
        area: unit["code"]
        for region in raw["regions"]
        for unit in region["units"]
        for area in unit["postcode_areas"]
    }
    assert shipped == AREA_TO_UNIT
    for area, unit in AREA_TO_UNIT.items():
        assert directory.resolve_unit(f"{area}1 1AA").code == unit, area


@pytest.mark.parametrize("area", [area for areas in OUTSIDE_AREAS.values() for area in areas.split()])
def test_areas_outside_england_and_wales_are_not_mapped(directory: UnitDirectory, area: str) -> None:
    assert area not in AREA_TO_UNIT
    assert directory.resolve_unit(f"{area}1 1AA") == directory.national_triage


# --- victims' postcodes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("postcode", "unit"),
    [
        # North East
        ("NE1 4ST", "NE"),
        ("SR1 3SD", "NE"),
        ("DH1 3RW", "NE"),
        ("TS1 2AZ", "NE"),
        ("DL1 5QF", "NE"),
        # North West
        ("L1 8JQ", "NW"),
        ("PR1 2HE", "NW"),
        ("CA1 1RR", "NW"),
        ("FY1 4BJ", "NW"),
        ("CH1 2HJ", "NW"),
        # Greater Manchester
        ("M1 1AE", "GM"),
        ("BL1 1RU", "GM"),
        ("OL1 1NL", "GM"),
        ("WN1 1XF", "GM"),
        ("SK1 3XE", "GM"),
        # Yorkshire and the Humber
        ("LS1 4AP", "YH"),
        ("S1 2HH", "YH"),
        ("BD1 1HY", "YH"),
        ("HU1 2AA", "YH"),
        ("YO1 7HH", "YH"),
        ("DN1 3BU", "YH"),
        # East Midlands
        ("NG1 5FS", "EM"),
        ("LE1 5WW", "EM"),
        ("DE1 2FS", "EM"),
        ("LN1 3BL", "EM"),
        ("NN1 2EL", "EM"),
        # West Midlands
        ("B1 1BB", "WM"),
        ("CV1 5FB", "WM"),
        ("WV1 1RD", "WM"),
        ("ST1 1HS", "WM"),
        ("SY1 1QH", "WM"),
        ("HR1 2HX", "WM"),
        # East of England
        ("NR1 3QQ", "EE"),
        ("CB2 1TN", "EE"),
        ("IP1 2AX", "EE"),
        ("CM1 1ER", "EE"),
        ("PE1 1HQ", "EE"),
        ("LU1 2BQ", "EE"),
        # London
        ("SW1A 1AA", "LON"),
        ("E1 6AN", "LON"),
        ("N1 9GU", "LON"),
        ("EC1A 1BB", "LON"),
        ("WC2N 5DU", "LON"),
        ("W1A 1AA", "LON"),
        ("NW1 2DB", "LON"),
        ("SE1 7PB", "LON"),
        ("CR0 2RH", "LON"),
        ("HA9 0WS", "LON"),
        # Kent, Surrey and Sussex
        ("BN1 1GE", "KSS"),
        ("ME1 1LX", "KSS"),
        ("CT1 2EH", "KSS"),
        ("GU1 4PS", "KSS"),
        ("RH10 1HR", "KSS"),
        ("TN1 1YQ", "KSS"),
        ("KT17 1HP", "KSS"),
        # South West
        ("BS1 4DJ", "SW"),
        ("EX1 1UH", "SW"),
        ("PL1 2AA", "SW"),
        ("TR1 2SF", "SW"),
        ("GL1 2TG", "SW"),
        ("BH1 2BU", "SW"),
        ("SP1 1BL", "SW"),
        # South Central
        ("OX1 1AA", "SC"),
        ("RG1 1JX", "SC"),
        ("SO14 7FY", "SC"),
        ("PO1 2AL", "SC"),
        ("MK9 1AB", "SC"),
        ("HP20 1UA", "SC"),
        # Wales
        ("CF10 1EP", "WAL"),
        ("SA1 3SN", "WAL"),
        ("NP20 1GA", "WAL"),
        ("LL55 1AB", "WAL"),
        ("LD1 5LG", "WAL"),
    ],
)
def test_well_known_postcodes_reach_their_unit(directory: UnitDirectory, postcode: str, unit: str) -> None:
    assert directory.resolve_unit(postcode).code == unit


@pytest.mark.parametrize(
    ("postcode", "unit"),
    [
        ("CH5 1AA", "NW"),  # Deeside, Wales: CH is mostly Wirral and Chester
        ("SY23 1AS", "WM"),  # Aberystwyth, Wales: SY is mostly Shropshire
        ("HR3 5AA", "WM"),  # Hay-on-Wye, Wales: HR is mostly Herefordshire
        ("NP16 5AA", "WAL"),  # Chepstow
        ("CA3 8AA", "NW"),  # Carlisle, England
        ("DA1 1AA", "KSS"),  # Dartford, Kent: DA is split almost evenly with Bexley
        ("KT22 7AA", "KSS"),  # Leatherhead, Surrey
        ("TW18 4AA", "LON"),  # Staines, Surrey: TW is mostly Hounslow and Richmond
        ("RM17 5AA", "LON"),  # Grays, Essex: RM is mostly Havering and Dagenham
        ("EN8 7AA", "LON"),  # Cheshunt, Herts: EN is mostly Enfield and Barnet
        ("WA14 1AA", "NW"),  # Altrincham, Greater Manchester: WA is mostly Warrington, Halton, St Helens
        ("SK17 6AA", "GM"),  # Buxton, Derbyshire: SK is mostly Stockport and Tameside
        ("S40 1AA", "YH"),  # Chesterfield, Derbyshire: S is mostly South Yorkshire
        ("PE21 6AA", "EE"),  # Boston, Lincolnshire: PE is mostly Cambridgeshire and Norfolk
        ("MK40 1AA", "SC"),  # Bedford: MK is mostly Milton Keynes
        ("GU14 7AA", "KSS"),  # Farnborough, Hampshire: GU is mostly Surrey
        ("PO19 1AA", "SC"),  # Chichester, West Sussex: PO is mostly Hampshire and the Isle of Wight
    ],
)
def test_cross_border_areas_follow_the_documented_choice(
    directory: UnitDirectory, postcode: str, unit: str
) -> None:
    assert directory.resolve_unit(postcode).code == unit


@pytest.mark.parametrize(
    "postcode", ["sw1a1aa", " SW1A 1AA ", "Sw1a 1aA", "SW1A  1AA", "\tSW1A\n1AA", "SW1A"]
)
def test_postcodes_in_any_case_and_spacing_resolve(directory: UnitDirectory, postcode: str) -> None:
    assert directory.resolve_unit(postcode).code == "LON"


@pytest.mark.parametrize(
    ("postcode", "area", "unit"),
    [
        # Each one-letter area next to the two-letter areas that start with the same letter.
        ("B1 1AA", "B", "WM"),
        ("BS1 4DJ", "BS", "SW"),
        ("BN1 1GE", "BN", "KSS"),
        ("L1 8JQ", "L", "NW"),
        ("LS1 4AP", "LS", "YH"),
        ("S1 2HH", "S", "YH"),
        ("SA1 3SN", "SA", "WAL"),
        ("SY1 1QH", "SY", "WM"),
        ("M1 1AE", "M", "GM"),
        ("ME1 1LX", "ME", "KSS"),
        ("N1 9GU", "N", "LON"),
        ("NE1 4ST", "NE", "NE"),
        ("NW1 2DB", "NW", "LON"),
        ("E1 6AN", "E", "LON"),
        ("EC1A 1BB", "EC", "LON"),
        ("W1A 1AA", "W", "LON"),
        ("WC1E 6BT", "WC", "LON"),
        ("G2 1DU", "G", "NATIONAL"),
        ("GL1 2TG", "GL", "SW"),
    ],
)
def test_one_letter_areas_are_not_confused_with_two_letter_areas(
    directory: UnitDirectory, postcode: str, area: str, unit: str
) -> None:
    assert postcode_area(postcode) == area
    assert directory.resolve_unit(postcode).code == unit


@pytest.mark.parametrize(
    "postcode",
    [
        "EH1 1YZ",  # Edinburgh
        "G2 1DU",  # Glasgow: one letter, like B or M
        "TD15 1AA",  # Berwick-upon-Tweed: English, but TD is mostly Scottish
        "BT1 5GS",  # Belfast
        "JE2 3AB",  # Jersey
        "GY1 1AA",  # Guernsey
        "IM1 1AA",  # Isle of Man
        "BF1 3AA",  # BFPO
        "GIR 0AA",
        "ZZ1 1AA",
    ],
)
def test_postcodes_outside_england_and_wales_go_to_national_triage(
    directory: UnitDirectory, postcode: str
) -> None:
    assert directory.resolve_unit(postcode) == directory.national_triage


@pytest.mark.parametrize(
    "postcode", [None, "", "   ", "unknown", "NFA", "12345", "SW", "1AA SW1", "SW1A 1AAA", "SW1A-1AA", "B"]
)
def test_missing_or_malformed_postcodes_go_to_national_triage(
    directory: UnitDirectory, postcode: str | None
) -> None:
    assert directory.resolve_unit(postcode) == directory.national_triage


@pytest.mark.parametrize(
    ("postcode", "area"),
    [
        ("SW1A 1AA", "SW"),
        ("sw1a1aa", "SW"),
        ("B1 1AA", "B"),
        ("B33 8TH", "B"),
        ("CR0 2RH", "CR"),
        ("M60 2LA", "M"),
        ("EC1A 1BB", "EC"),
        ("LS1", "LS"),
        ("BT1 1AA", "BT"),
        ("", None),
        ("SW", None),
        ("not a postcode", None),
        (None, None),
    ],
)
def test_postcode_area(postcode: str | None, area: str | None) -> None:
    assert postcode_area(postcode) == area


# --- sentencing courts ---------------------------------------------------------------------------------


def test_there_is_a_crown_court_list_for_every_region(raw: dict[str, Any]) -> None:
    courts = _all_courts(raw)
    assert 75 <= len(courts) <= 90
    assert {unit for unit, _ in courts} == set(REGIONS.values())
    # One code scheme for every court, so a code is never mistaken for another kind.
    assert all(re.fullmatch(r"CC-[A-Z0-9-]+", court["code"]) for _, court in courts)
    assert all(
        "Crown Court" in court["name"] or court["name"] == "Central Criminal Court" for _, court in courts
    )


def test_every_court_resolves_by_code_and_by_name(raw: dict[str, Any], directory: UnitDirectory) -> None:
    for unit, court in _all_courts(raw):
        assert directory.unit_for_court(court["code"]).code == unit, court["code"]
        assert directory.unit_for_court(court["code"].lower()).code == unit, court["code"]
        assert directory.unit_for_court(court["name"]).code == unit, court["name"]
        assert directory.unit_for_court(court["name"].upper()).code == unit, court["name"]
        for alias in court.get("aliases", []):
            assert directory.unit_for_court(alias).code == unit, alias


@pytest.mark.parametrize(
    ("court", "unit"),
    [
        ("Birmingham", "WM"),
        ("birmingham crown court", "WM"),
        ("The Crown Court at Birmingham", "WM"),
        ("Leeds Crown Court", "YH"),
        ("Central Criminal Court", "LON"),
        ("Old Bailey", "LON"),
        ("Southwark", "LON"),
        ("Kingston-upon-Thames", "LON"),
        ("Kingston upon Thames Crown Court", "LON"),
        ("Stoke on Trent", "WM"),
        ("St. Albans", "EE"),
        ("Kings Lynn", "EE"),
        ("King\u2019s Lynn Crown Court", "EE"),
        ("Manchester Crown Court (Minshull Street)", "GM"),
        ("Manchester Crown Court", "GM"),
        ("Chester", "NW"),
        ("Mold", "WAL"),
        ("Newport", "WAL"),
        ("Newport (Isle of Wight)", "SC"),
        ("Teesside", "NE"),
        ("Guildford", "KSS"),
        ("Cardiff", "WAL"),
        ("  CC-BRISTOL  ", "SW"),
    ],
)
def test_courts_by_name_ignore_case_punctuation_and_suffix(
    directory: UnitDirectory, court: str, unit: str
) -> None:
    assert directory.unit_for_court(court).code == unit


@pytest.mark.parametrize(
    "court",
    [None, "", "   ", "Crown Court", "Glasgow High Court", "Belfast Crown Court", "CC-NOWHERE", "999"],
)
def test_unknown_courts_go_to_national_triage(directory: UnitDirectory, court: str | None) -> None:
    assert directory.unit_for_court(court) == directory.national_triage


# --- looking units up -------------------------------------------------------------------------------------


def test_unit_by_code(directory: UnitDirectory) -> None:
    for code in REGIONS.values():
        assert directory.unit_by_code(code).code == code
    assert directory.unit_by_code("lon").code == "LON"
    assert directory.unit_by_code("NATIONAL") == directory.national_triage
    assert directory.unit_by_code("XX") is None
    assert directory.unit_by_code("") is None


# --- validation of edited reference data ---------------------------------------------------------------


def _minimal() -> dict[str, Any]:
    return {
        "national_triage": {"code": "NATIONAL", "name": "National triage", "region": "National"},
        "regions": [
            {
                "name": "North East",
                "units": [
                    {
                        "code": "NE",
                        "name": "North East VCU",
                        "postcode_areas": ["NE", "SR"],
                        "courts": [{"code": "CC-DURHAM", "name": "Durham Crown Court"}],
                    }
                ],
            },
            {
                "name": "North West",
                "units": [
                    {
                        "code": "NW",
                        "name": "North West VCU",
                        "postcode_areas": ["L"],
                        "courts": [{"code": "CC-LIVERPOOL", "name": "Liverpool Crown Court"}],
                    }
                ],
            },
        ],
    }


def test_minimal_directory_is_valid() -> None:
    directory = UnitDirectory.from_mapping(_minimal())
    assert [unit.code for unit in directory.units] == ["NE", "NW", "NATIONAL"]
    assert directory.resolve_unit("L1 8JQ").region == "North West"


def test_rejects_a_postcode_area_in_two_units() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["postcode_areas"].append("SR")
    with pytest.raises(ValueError, match=r"postcode area 'SR'.*'NE'.*'NW'"):
        UnitDirectory.from_mapping(data)


def test_rejects_a_postcode_area_listed_twice_in_one_unit() -> None:
    data = _minimal()
    data["regions"][0]["units"][0]["postcode_areas"].append("NE")
    with pytest.raises(ValueError, match=r"postcode area 'NE'"):
        UnitDirectory.from_mapping(data)


def test_rejects_a_duplicate_unit_code() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["code"] = "NE"
    with pytest.raises(ValueError, match=r"duplicate unit code 'NE'.*North East VCU.*North West VCU"):
        UnitDirectory.from_mapping(data)


def test_rejects_a_unit_sharing_the_triage_code() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["code"] = "NATIONAL"
    with pytest.raises(ValueError, match=r"duplicate unit code 'NATIONAL'"):
        UnitDirectory.from_mapping(data)


@pytest.mark.parametrize("code", ["ne", "N", "NORTHWEST", "N-W", "NW ", "", None, 12])
def test_rejects_a_malformed_unit_code(code: object) -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["code"] = code
    with pytest.raises(ValueError, match=r"unit code .* must be 2-8 uppercase letters or digits"):
        UnitDirectory.from_mapping(data)


@pytest.mark.parametrize("area", ["sw", "S1", "ABC", "", 7])
def test_rejects_a_malformed_postcode_area(area: object) -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["postcode_areas"].append(area)
    with pytest.raises(ValueError, match=r"unit 'NW': postcode area"):
        UnitDirectory.from_mapping(data)


def test_rejects_a_court_in_two_units() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["courts"].append({"code": "CC-DURHAM", "name": "Durham Crown Court"})
    with pytest.raises(ValueError, match=r"court code 'CC-DURHAM'.*'NE'.*'NW'"):
        UnitDirectory.from_mapping(data)


def test_rejects_two_courts_with_the_same_name() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["courts"].append({"code": "CC-DURHAM-2", "name": "DURHAM"})
    with pytest.raises(ValueError, match=r"court name 'DURHAM'.*'CC-DURHAM'.*'CC-DURHAM-2'"):
        UnitDirectory.from_mapping(data)


def test_rejects_a_malformed_court_code() -> None:
    data = _minimal()
    data["regions"][1]["units"][0]["courts"][0]["code"] = "cc liverpool"
    with pytest.raises(ValueError, match=r"court code 'cc liverpool'"):
        UnitDirectory.from_mapping(data)


def test_rejects_postcode_areas_on_national_triage() -> None:
    data = _minimal()
    data["national_triage"]["postcode_areas"] = ["TD"]
    with pytest.raises(ValueError, match=r"national_triage: must not list postcode_areas"):
        UnitDirectory.from_mapping(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: data.pop("national_triage"), r"'national_triage'"),
        (lambda data: data.pop("regions"), r"'regions'"),
        (lambda data: data.update(regions=[]), r"'regions' is empty"),
        (lambda data: data["regions"][0].update(units=[]), r"region 'North East' has no units"),
        (
            lambda data: data["regions"][1].update(name="North East"),
            r"region 'North East' appears more than once",
        ),
        (lambda data: data["regions"][0]["units"][0].update(name=" "), r"unit 'NE': 'name'"),
        (lambda data: data["regions"][0]["units"].append("NE"), r"region 'North East': units\[1\]"),
    ],
)
def test_rejects_malformed_structure(edit: Any, message: str) -> None:
    data = copy.deepcopy(_minimal())
    edit(data)
    with pytest.raises(ValueError, match=message):
        UnitDirectory.from_mapping(data)


def test_rejects_data_that_is_not_a_mapping() -> None:
    with pytest.raises(ValueError, match="unit directory"):
        UnitDirectory.from_mapping([])  # type: ignore[arg-type]


def test_shipped_file_fails_validation_when_an_area_is_duplicated(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["regions"][-1]["units"][0]["postcode_areas"].append("CH")  # CH given to Wales as well as NW
    with pytest.raises(ValueError, match=r"postcode area 'CH'.*'NW'.*'WAL'"):
        UnitDirectory.from_mapping(data)
