"""A reader's consumer group is always under its own unit's name: one unit cannot move another's progress."""

from __future__ import annotations

import pytest

from connectors.queue_reader import reader_group


def test_the_default_reader_is_the_units_own_group() -> None:
    assert reader_group("p.", "YH") == "p.vlo-reader.YH"


def test_a_named_reader_is_a_group_within_its_unit() -> None:
    assert reader_group("p.", "YH", "case-system") == "p.vlo-reader.YH.case-system"


@pytest.mark.parametrize("name", ["", "GM", ".GM", "../GM", "a.b", "x" * 65, "name with space"])
def test_a_reader_name_cannot_reach_outside_its_unit(name: str) -> None:
    if name == "GM":  # a plain name is a reader of this unit, whatever it spells
        assert reader_group("p.", "YH", name) == "p.vlo-reader.YH.GM"
        return
    with pytest.raises(ValueError, match="a reader name is"):
        reader_group("p.", "YH", name)
