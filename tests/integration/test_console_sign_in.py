"""Signing in to the console of a real worker: the cookie a browser is given, behind a TLS proxy and not."""

from __future__ import annotations

import json
import urllib.request
from http.cookies import SimpleCookie

import pytest

from tests.integration.conftest import Hub, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def sign_in(hub: Hub) -> SimpleCookie:
    made = hub.run(
        "operators", "add", "alice", "--role", "viewer", "--password-stdin", input="a-long-password\n"
    )
    assert made.returncode == 0, made.stderr
    request = urllib.request.Request(
        f"{hub.web}/api/session",
        data=json.dumps({"username": "alice", "password": "a-long-password"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # plain http, as a TLS proxy forwards it
        assert response.status == 200
        return SimpleCookie(response.headers["Set-Cookie"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_behind_a_tls_proxy_the_sign_in_cookie_is_for_https_only(hub: Hub) -> None:
    hub.env["HUB_PUBLIC_URL"] = "https://hub.example.org"
    for _ in running_worker(hub):
        (morsel,) = sign_in(hub).values()
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Strict"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_https_in_front_the_cookie_can_travel_over_loopback_http(hub: Hub) -> None:
    for _ in running_worker(hub):
        (morsel,) = sign_in(hub).values()
    assert not morsel["secure"] and morsel["httponly"]
