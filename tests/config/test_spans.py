"""config.spans: the `{SPAN}` pattern and the `spans` window, exactly."""
import pytest

from config import ConfigError
from config.spans import check_pattern, parse_window, select, span_of, spans_found


@pytest.mark.parametrize("raw, window", [(None, "latest"), ("latest", "latest"), ("all", "all"),
                                         ("last 3", "last 3"), ("last  02", "last 2"), (" last 1 ", "last 1")])
def test_windows(raw, window):
    assert parse_window("sources[0].spans", raw) == window


@pytest.mark.parametrize("raw", ["last 0", "last", "first 2", 3, "newest", "last -1", True])
def test_bad_windows_name_the_key_and_the_valid_ones(raw):
    with pytest.raises(ConfigError, match=r"^config key 'sources\[0\]\.spans': received .*; valid: latest, all, "
                                          r"or last N with N >= 1"):
        parse_window("sources[0].spans", raw)


def test_select_keeps_the_newest_oldest_first():
    assert select([3, 1, 2, 10], "latest") == [10]
    assert select([3, 1, 2, 10], "last 2") == [3, 10]
    assert select([3, 1, 2, 10], "last 9") == [1, 2, 3, 10]
    assert select([3, 1, 2, 10], "all") == [1, 2, 3, 10]


def test_span_numbers_from_matches():
    pattern = "/data/faces/span-{SPAN}/x"
    assert span_of(pattern, "/data/faces/span-007/x") == 7
    assert span_of(pattern, "/data/faces/span-new/x") is None
    assert spans_found("p", pattern, ["/data/faces/span-2/x", "/data/faces/span-10/x", "/data/faces/span-a/x"]) == {
        2: "/data/faces/span-2/x", 10: "/data/faces/span-10/x"}


def test_one_span_named_twice_or_none_found_is_an_error():
    with pytest.raises(ConfigError, match="span 1 is both /d/span-01 and /d/span-1; rename one"):
        spans_found("sources[0].path", "/d/span-{SPAN}", ["/d/span-1", "/d/span-01"])
    with pytest.raises(ConfigError, match=r"the span pattern /d/span-\{SPAN\} matches nothing \(looked for /d/span-\*"):
        spans_found("sources[0].path", "/d/span-{SPAN}", ["/d/other"])


@pytest.mark.parametrize("path, message", [
    ("/d/{SPAN}/{SPAN}", "may appear once"), ("/d/{VERSION}", "the only pattern token is"),
    ("/d/{SPAN:3}", "the only pattern token is"), ("/d/*/span-{SPAN}", "no glob characters")])
def test_bad_patterns(path, message):
    with pytest.raises(ConfigError, match=message):
        check_pattern("sources[0].path", path)
    check_pattern("sources[0].path", "/d/span-{SPAN}")  # fine
    check_pattern("sources[0].path", "/d/plain")
