"""A small, realistic scenario for `hub up --demo`: a sentence, a referral, an allocation, a release."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def demo_scenario(
    today: date, case_ref: str = "01DM0001226", noms_number: str = "A4821DM"
) -> list[tuple[str, dict[str, Any]]]:
    """(source, event) pairs in the order the agencies would send them."""
    sentenced = today - timedelta(days=400)
    return [
        (
            "court",
            {
                "event_type": "SentenceImposed",
                "case_ref": case_ref,
                "noms_number": noms_number,
                "court_code": "Leeds Crown Court",
                "sentence_date": sentenced.isoformat(),
                "offender": {"name": "Demo Offender", "pnc": "2019/0045123K"},
                "offences": [
                    {"code": "OF61016", "description": "Wounding with intent", "classification": "violent"}
                ],
                "disposal": "custody",
                "custodial_term_months": 30,
            },
        ),
        (
            "witness-care",
            {
                "event_type": "VictimReferred",
                "case_ref": case_ref,
                "victim": {
                    "person_ref": "WC-DEMO-1",
                    "name": "Demo Victim",
                    "relationship": "victim",
                    "address": {"lines": ["1 Demo Street"], "town": "Leeds", "postcode": "LS6 2AB"},
                    "preferred_channel": "letter",
                    "language": "en",
                },
                "referral_date": (sentenced + timedelta(days=10)).isoformat(),
            },
        ),
        (
            "vcs",
            {"event_type": "CaseAllocated", "case_ref": case_ref, "unit_code": "YH", "vlo_id": "vlo-demo-1"},
        ),
        (
            "prison",
            {
                "event_type": "PrisonerReleased",
                "noms_number": noms_number,
                "release_type": "automatic",
                "release_date": today.isoformat(),
                "licence_conditions": [
                    {"text": "Not to contact the victim directly or indirectly", "victim_related": True},
                    {"text": "Reside at an approved address", "victim_related": False},
                ],
                "release_address": {"lines": ["withheld"], "postcode": "LS1 1AA"},
            },
        ),
    ]
