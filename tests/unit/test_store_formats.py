"""docker's number and table formats, and the Go decoding of image configs."""

from __future__ import annotations

import json

import pytest

from emustore.display import human_duration, human_size, table
from emustore.stores.docker.goconfig import ConfigTypeError, GoTime, decode_container_config, decode_image
from emustore.stores.docker.inspect import render_inspect


@pytest.mark.parametrize(
    ("size", "precision", "text"),
    [(0, 3, "0B"), (25, 3, "25B"), (1982291, 3, "1.98MB"), (1982291, 4, "1.982MB"), (999_999, 3, "1e+03kB"), (6, 4, "6B")],
)
def test_human_size(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"), (3000, "50 minutes"),
     (3600, "About an hour"), (47 * 3600, "47 hours"), (3 * 86400, "3 days"), (20 * 86400, "2 weeks"),
     (100 * 86400, "3 months"), (3 * 365 * 86400, "3 years")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_table_pads_like_tabwriter() -> None:
    assert table(["REPOSITORY", "TAG", "SIZE"], [["127.0.0.1:5000/a/long", "v1", "1MB"]]) == (
        "REPOSITORY              TAG       SIZE\n"
        "127.0.0.1:5000/a/long   v1        1MB\n"
    )


@pytest.mark.parametrize(
    ("text", "go", "unix"),
    [("2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z", 1700000000),
     ("2023-11-14T22:13:20.120000000+00:00", "2023-11-14T22:13:20.12Z", 1700000000),
     ("2023-11-15T00:13:20.5+02:00", "2023-11-15T00:13:20.5+02:00", 1700000000)],
)
def test_go_time(text: str, go: str, unix: int) -> None:
    parsed = GoTime.parse(text)
    assert (parsed.text, parsed.unix) == (go, unix)


def test_container_config_decodes_like_go() -> None:
    config = decode_container_config({"cmd": "echo hi", "ExposedPorts": {"80/tcp": {}}, "Healthcheck": {}, "x": 1})
    assert config["Cmd"] == ["echo hi"]
    assert config["ExposedPorts"] == {"80/tcp": {}}
    assert config["Healthcheck"] == {}
    assert "StopTimeout" not in config and config["Env"] is None and config["Labels"] is None
    with pytest.raises(ConfigTypeError):
        decode_container_config({"Env": "PATH=/bin"})
    with pytest.raises(ConfigTypeError):
        decode_image({"created": "yesterday"})
    assert decode_image({}).created.text == "0001-01-01T00:00:00Z"


def test_render_inspect_keeps_html_and_unicode() -> None:
    assert render_inspect([]) == "[]\n"
    assert json.loads(render_inspect([{"a": "<é>"}])) == [{"a": "<é>"}]
    assert '"<é>"' in render_inspect([{"a": "<é>"}])
