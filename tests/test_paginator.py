"""The Laravel-compatible paginator."""

import pytest
from pyramid.registry import Registry
from pyramid.testing import DummyRequest

from vexpenses_core.paginator import Paginator, page_number


def request_for(url="/api/v1/user", **params):
    request = DummyRequest(params=params, path=url)
    request.registry = Registry()
    request.registry.settings = {"vexpenses.base_url": "http://localhost"}
    request.application_url = "http://evil.example"  # from Host: never used
    request.path_info = url
    return request


def test_shape_matches_laravel():
    page = Paginator(request_for(), items=[{"id": i} for i in range(10)], total=25, page=2,
                     filters={"name": "ana"}).to_dict()
    assert list(page) == [
        "current_page", "data", "first_page_url", "from", "last_page", "last_page_url",
        "links", "next_page_url", "path", "per_page", "prev_page_url", "to", "total",
    ]
    assert page["current_page"] == 2
    assert page["from"] == 11 and page["to"] == 20
    assert page["last_page"] == 3 and page["per_page"] == 10 and page["total"] == 25
    assert page["path"] == "http://localhost/api/v1/user"
    assert page["first_page_url"] == "http://localhost/api/v1/user?name=ana&page=1"
    assert page["next_page_url"] == "http://localhost/api/v1/user?name=ana&page=3"
    assert page["prev_page_url"] == "http://localhost/api/v1/user?name=ana&page=1"
    assert page["links"][0] == {"url": page["prev_page_url"], "label": "&laquo; Previous",
                                "active": False}
    assert page["links"][2] == {"url": "http://localhost/api/v1/user?name=ana&page=2",
                                "label": "2", "active": True}
    assert page["links"][-1]["label"] == "Next &raquo;"


def test_a_list_may_choose_its_page_size():
    """Paginator is public: a plugin's list of 25 a page is not a server error."""
    page = Paginator(request_for(), items=[{"id": i} for i in range(25)], total=60, page=1,
                     per_page=25).to_dict()
    assert page["per_page"] == 25 and page["last_page"] == 3
    assert (page["from"], page["to"]) == (1, 25)
    with pytest.raises(ValueError, match="cannot hold"):
        Paginator(request_for(), items=[{"id": i} for i in range(11)], total=11, page=1)


def test_page_beyond_the_last_is_empty_not_an_error():
    page = Paginator(request_for(), items=[], total=5, page=9).to_dict()
    assert page["data"] == [] and page["from"] is None and page["to"] is None
    assert page["next_page_url"] is None


def test_empty_list_has_one_page():
    page = Paginator(request_for(), items=[], total=0, page=1).to_dict()
    assert page["last_page"] == 1
    assert [link["label"] for link in page["links"]] == ["&laquo; Previous", "1", "Next &raquo;"]


def test_filters_with_special_characters_are_encoded():
    page = Paginator(request_for(), items=[], total=0, page=1,
                     filters={"email": "a+b@x.com", "name": ""}).to_dict()
    assert page["first_page_url"].endswith("?email=a%2Bb%40x.com&page=1")


@pytest.mark.parametrize("current,expected", [
    (1, ["1", "2", "3", "4", "5", "6", "7", "8", "...", "49", "50"]),
    (25, ["1", "2", "...", "22", "23", "24", "25", "26", "27", "28", "...", "49", "50"]),
    (50, ["1", "2", "...", "42", "43", "44", "45", "46", "47", "48", "49", "50"]),
])
def test_long_lists_get_a_window_like_laravel(current, expected):
    page = Paginator(request_for(), items=[], total=500, page=current).to_dict()
    assert [link["label"] for link in page["links"][1:-1]] == expected


@pytest.mark.parametrize("raw,expected", [
    ("3", 3), ("0", 1), ("-2", 1), ("abc", 1), ("", 1), ("1e3", 1),
    ("99999999999999999999999", 1_000_000_000),
])
def test_page_number_is_forgiving(raw, expected):
    assert page_number(request_for(page=raw)) == expected
