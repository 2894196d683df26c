"""The suite's schedule: slow files are handed out first (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import slowest_files_first


def _item(nodeid: str, *marks: str) -> pytest.Item:
    class Item:
        def __init__(self) -> None:
            self.nodeid = nodeid

        def get_closest_marker(self, name: str) -> object | None:
            return name if name in marks else None

    return Item()  # type: ignore[return-value]


def test_files_with_slow_tests_come_first_and_keep_their_tests_together_in_order() -> None:
    items = [
        _item("tests/a_test.py::one"),
        _item("tests/b_test.py::one", "integration"),
        _item("tests/c_test.py::pure"),
        _item("tests/c_test.py::slow", "e2e", "integration"),
        _item("tests/d_test.py::one", "fault"),
        _item("tests/a_test.py::two"),
    ]
    assert [i.nodeid for i in slowest_files_first(items)] == [
        "tests/c_test.py::pure",
        "tests/c_test.py::slow",
        "tests/d_test.py::one",
        "tests/b_test.py::one",
        "tests/a_test.py::one",
        "tests/a_test.py::two",
    ]
