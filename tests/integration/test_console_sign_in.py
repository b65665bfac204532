"""Signing in to the console of a real worker: the cookie a browser is given, behind a TLS proxy and not."""

from __future__ import annotations

import json
import urllib.error
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


def request(
    hub: Hub, method: str, path: str, cookie: str = "", body: dict | None = None, csrf: str = ""
) -> int:
    headers = {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf}
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(f"{hub.web}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sign_out_and_a_lockout_hold_for_every_worker_and_across_a_restart(hub: Hub) -> None:
    made = hub.run("operators", "add", "bob", "--role", "viewer", "--password-stdin", input="bobs-password\n")
    assert made.returncode == 0, made.stderr
    for _ in running_worker(hub):
        call = urllib.request.Request(
            f"{hub.web}/api/session",
            data=json.dumps({"username": "bob", "password": "bobs-password"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(call, timeout=30) as response:
            csrf = json.loads(response.read())["csrf"]
            (morsel,) = SimpleCookie(response.headers["Set-Cookie"]).values()
        cookie = f"{morsel.key}={morsel.value}"
        assert request(hub, "GET", "/api/status", cookie) == 200
        assert request(hub, "DELETE", "/api/session", cookie, csrf=csrf) == 200
        wrong = {"username": "bob", "password": "not-his-password"}
        assert [request(hub, "POST", "/api/session", body=wrong) for _ in range(5)] == [401] * 5
        assert (
            request(hub, "POST", "/api/session", body={"username": "bob", "password": "bobs-password"}) == 429
        )
    # Another worker, or this one restarted: the same case store, so the same answers.
    for _ in running_worker(hub):
        assert request(hub, "GET", "/api/status", cookie) == 401  # the signed-out cookie stays refused
        assert (
            request(hub, "POST", "/api/session", body={"username": "bob", "password": "bobs-password"}) == 429
        )
