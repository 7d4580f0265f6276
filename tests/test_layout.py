"""The output folder's names: formatted and parsed by io/layout.py alone."""

from __future__ import annotations

import pytest

from batchinfer.io import layout
from batchinfer.io.layout import Target


@pytest.mark.parametrize("file, batch", [(0, 0), (3, 17), (99_999, 999_999), (123_456, 1_234_567)])
def test_a_unit_name_parses_back(file, batch):
    name = layout.unit_name(file, batch)
    assert layout.parse_unit(name) == (file, batch)
    assert layout.parse_unit(layout.part_name(name)) == layout.parse_unit(layout.entry_name(name)) == (file, batch)
    assert layout.is_entry(layout.entry_name(name)) and layout.unit_of_entry(layout.entry_name(name)) == name
    assert layout.file_of(name) == file


def test_name_order_is_input_order():
    names = [layout.unit_name(f, b) for f in (0, 1, 10) for b in (0, 2, 11)]
    assert sorted(names) == names


@pytest.mark.parametrize("name", ["part-00000", "part-0-0", "part-00000-000000-x", "part-00000-00000a",
                                  "_SUCCESS", ".part-00000-000000.parquet.tmp-abc", "staging-abc",
                                  "part-00000-uuid.snappy.parquet", ""])
def test_a_name_that_is_not_a_unit_is_rejected(name):
    assert not layout.is_unit(name)
    with pytest.raises(ValueError, match="not a unit"):
        layout.parse_unit(name)


def test_negative_indices_make_no_unit():
    with pytest.raises(ValueError):
        layout.unit_name(-1, 0)


def test_foreign_parts_count_as_parts_but_not_as_units():
    assert layout.is_part("part-00000-uuid.snappy.parquet") and not layout.is_unit("part-00000-uuid.snappy.parquet")


def test_temporary_names_are_temporary():
    assert layout.is_temp(layout.temp_name("part-00000-000000.parquet")) and layout.is_temp(layout.probe_name())
    assert not layout.is_temp("part-00000-000000.parquet") and not layout.is_temp(".hidden")


def test_targets_place_parts_entries_and_plans():
    out, staging = Target.output("o"), Target.staging("o", layout.staging_name("r1"))
    unit = layout.unit_name(1, 2)
    assert out.part(unit) == "o/part-00001-000002.parquet" and out.entry(unit) == "o/_batchinfer/done/" \
        "part-00001-000002.json" and out.plan == "o/_batchinfer/plan.json" and not out.staged
    assert staging.folder == "o/_batchinfer/staging-r1" and layout.is_staging("staging-r1")
    assert staging.entry(unit) == "o/_batchinfer/staging-r1/done/part-00001-000002.json"
    assert staging.dead_part(unit) == "o/_batchinfer/staging-r1/_dead_letter/part-00001-000002.parquet"
    assert staging.complete == "o/_batchinfer/staging-r1/COMPLETE" and staging.plan == "o/_batchinfer/staging-r1/plan.json"
    for staged in (layout.part_name(unit), layout.staged_dead(layout.part_name(unit)),
                   layout.staged_entry(layout.entry_name(unit))):
        assert out.path_of(staged).rsplit("/", 1)[1] == staging.path_of(staged).rsplit("/", 1)[1]
    assert out.path_of(layout.staged_entry("x.json")) == "o/_batchinfer/done/x.json"
    assert layout.marker_path("o") == "o/_SUCCESS" and layout.lock_path("o") == "o/_batchinfer/lock"
    assert layout.dead_letter_path("s3://b/out/") == "s3://b/out/_dead_letter"
    assert layout.parts_glob("s3://b/out/") == "s3://b/out/*.parquet"
