"""The production stack as files: alert rules, Prometheus, Grafana, docker-compose.yml and the Dockerfile.

Docker does not run on the development machines, so the stack is checked by reading it: every metric name an
alert or a dashboard panel uses is one the hub exposes, every alert tells the on-call engineer what to do
without personal data, the compose file starts the services the README promises with settings the hub
reads, and everything it mounts or copies exists. When promtool is installed (Debian: `prometheus`), the
rules and the configuration are also checked by it and the rules' unit tests run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import hub.metrics  # noqa: F401  (registers the hub's metrics)
from hub.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
RULE_TESTS = sorted(PROMETHEUS.glob("*_test.yml"))
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "hub.json"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"

WORKERS = ("hub-worker-1", "hub-worker-2")
# Label values an annotation may show: the bounded sets of hub/metrics.py, plus where the sample came from.
SHOWABLE_LABELS = {"source", "event_type", "outcome", "unit", "priority", "action", "stage", "error_class"}
SHOWABLE_LABELS |= {"tier", "timer", "what", "topic", "instance", "job"}
# PromQL words that look like metric names: operators, modifiers and literals.
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
PROMQL_WORDS |= {"group_left", "group_right", "atan2", "inf", "nan"}
# On the PATH, or beside this interpreter (where `./dev` could put the one binary from Debian's package).
PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
PROMTOOL_TIMEOUT_SECONDS = 300


def exposed_metric_names() -> set[str]:
    """The series names the hub's /metrics shows: counters with _total, histograms with their parts."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "info": ("_info",),
        "summary": ("_sum", "_count", "_created", ""),
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("hub_")
        for suffix in suffixes.get(family.type, ("",))
    }


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression (or a Grafana query) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    words = re.findall(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {word for word in words if word.lower() not in PROMQL_WORDS}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def recorded_names() -> set[str]:
    return {
        rule["record"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "record" in rule
    }


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def unknown_metrics(exprs: list[str], allowed: set[str]) -> dict[str, set[str]]:
    return {expr: metric_names(expr) - allowed for expr in exprs if metric_names(expr) - allowed}


# Alert rules


def test_the_metric_name_check_sees_every_selector_and_nothing_else() -> None:
    expr = (
        "round(sum by (stage) ((hub_dead_letters_total unless hub_dead_letters_total offset 15m) * 1 or "
        'increase(hub_dead_leters_total{stage="ingest"}[15m]))) > 0 and on () (up{job="hub"} == bool 1) '
        'or histogram_quantile(0.99, sum by (le) (rate(hub_x_bucket{source=~"$source"}[$__rate_interval])))'
    )

    assert metric_names(expr) == {"hub_dead_letters_total", "hub_dead_leters_total", "up", "hub_x_bucket"}
    assert unknown_metrics([expr], exposed_metric_names() | {"up"}) == {
        expr: {"hub_dead_leters_total", "hub_x_bucket"}
    }


def test_alert_rules_use_only_metrics_the_hub_exposes() -> None:
    exprs = [rule["expr"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]

    assert len(exprs) >= 12
    assert unknown_metrics(exprs, exposed_metric_names() | {"up"} | recorded_names()) == {}


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))

    for metric in (
        "hub_dead_letters_total",  # any dead letter
        "hub_retry_oldest_age_seconds",  # oldest retry too old
        "hub_source_last_event_timestamp_seconds",  # a silent source
        "hub_consumer_lag_messages",
        "hub_urgent_unacknowledged",
        "hub_http_deliveries_total",
        "hub_outbox_pending",
        "hub_parked_oldest_age_seconds",
        "up",  # worker down
    ):
        assert metric in used, metric
    silent = next(rule for rule in alert_rules() if "hub_source_last_event_timestamp_seconds" in rule["expr"])
    assert "hub:england_wales_working_hours" in silent["expr"] and "1800" in silent["expr"]


def test_every_alert_has_a_severity_and_tells_the_on_call_engineer_what_to_do() -> None:
    names = [rule["alert"] for rule in alert_rules()]

    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert "What to do:" in rule["annotations"]["description"], rule["alert"]


def test_alert_annotations_show_only_bounded_label_values() -> None:
    for rule in alert_rules():
        for text in rule["annotations"].values():
            shown = set(re.findall(r"\$labels\.(\w+)", text))
            assert shown <= SHOWABLE_LABELS, (rule["alert"], shown - SHOWABLE_LABELS)


# Prometheus and Grafana


def test_prometheus_scrapes_both_workers_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    hub_job = next(job for job in config["scrape_configs"] if job["job_name"] == "hub")
    targets = {target for static in hub_job["static_configs"] for target in static["targets"]}
    services = compose()["services"]

    assert [PROMETHEUS / name for name in config["rule_files"]] == [ALERTS]
    assert hub_job.get("metrics_path", "/metrics") == "/metrics"
    assert targets == {f"{name}:{environment(services[name])['HUB_WEB_PORT']}" for name in WORKERS}
    # The alerts' `up{job="hub"}` is this job.
    assert any('job="hub"' in rule["expr"] for rule in alert_rules())


def test_dashboard_queries_use_only_metrics_the_hub_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = [variable["definition"] for variable in dashboard["templating"]["list"]]

    assert unknown_metrics(dashboard_queries(), exposed_metric_names() | {"up"}) == {}
    for definition in variables:
        metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", definition)
        assert metric and metric.group(1) in exposed_metric_names(), definition


def test_dashboard_has_the_panels_operations_needs() -> None:
    queries = " ".join(dashboard_queries())

    for wanted in (
        r"sum by \(source\) \(rate\(hub_events_consumed_total",  # throughput by source
        r"sum by \(unit, priority\) \(rate\(hub_notifications_total",
        r"histogram_quantile\(0\.5, sum by \(le, priority\) \(rate\(hub_end_to_end_latency_seconds_bucket",
        r"histogram_quantile\(0\.99, sum by \(le, priority\) \(rate\(hub_end_to_end_latency_seconds_bucket",
        r"sum by \(stage, error_class\) \(increase\(hub_dead_letters_total",
        r"hub_retry_waiting",
        r"hub_retry_oldest_age_seconds",
        r"hub_parked_events_waiting",
        r"hub_timers_overdue",
        r"hub_urgent_unacknowledged",
        r"time\(\) - max by \(source\) \(max_over_time\(hub_source_last_event_timestamp_seconds",
        r"hub_consumer_lag_messages",
        r"sum by \(unit, outcome\) \(rate\(hub_http_deliveries_total",
    ):
        assert re.search(wanted, queries), wanted


def test_dashboard_panels_use_the_provisioned_datasource_and_fit_the_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uid = datasources[0]["uid"]
    panels = dashboard["panels"]

    assert datasources[0]["url"] == "http://prometheus:9090" and "prometheus" in compose()["services"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid, panel["title"]


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    return [tuple(volume.split(":")[:2]) for volume in service.get("volumes", [])]


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    grafana = dict(mounts(compose()["services"]["grafana"]))
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "hub.yml")["providers"][0]

    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert provider["options"]["path"] == grafana["./deploy/grafana/dashboards"]


# docker-compose.yml and the Dockerfile


def test_compose_runs_kafka_in_kraft_mode_postgres_two_workers_prometheus_and_grafana() -> None:
    services = compose()["services"]
    kafka = environment(services["kafka"])

    assert {"kafka", "postgres", *WORKERS, "prometheus", "grafana"} <= set(services)
    assert not any("zookeeper" in name for name in services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    for name in WORKERS:
        # Containers reach the broker on the address Kafka advertises to them.
        assert (
            f"PLAINTEXT://{environment(services[name])['HUB_BROKER']}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
        )
    assert services["postgres"]["image"].startswith("postgres:")


def test_the_two_workers_form_one_consumer_group_with_the_production_settings() -> None:
    services = compose()["services"]
    envs = [environment(services[name]) for name in WORKERS]
    leader_topic = f"{envs[0]['HUB_APP_ID']}-__assignor-__leader"

    assert envs[0]["HUB_APP_ID"] and envs[0]["HUB_APP_ID"] == envs[1]["HUB_APP_ID"]
    for name, env in zip(WORKERS, envs, strict=True):
        assert services[name]["command"] == ["hub", "worker"]
        assert services[name]["build"] == "."
        assert env["HUB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["HUB_DATABASE_URL"]
        assert float(env["HUB_RELEASE_HOLD_SECONDS"]) == 3600
        assert env["HUB_WEB_HOST"] == "0.0.0.0"
        assert "/health" in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # faust's leader topic, which the broker will not auto-create, for this consumer group.
    assert leader_topic in services["kafka-topics"]["command"]


def test_every_hub_variable_set_for_the_workers_is_a_setting_the_hub_reads() -> None:
    services = compose()["services"]
    names = {key for name in WORKERS for key in environment(services[name])}
    names |= set(re.findall(r"\b(HUB_\w+)=", DOCKERFILE.read_text(encoding="utf-8")))
    settings = {f"HUB_{field.upper()}" for field in Settings.model_fields}

    assert {"HUB_BROKER", "HUB_DATABASE_URL", "HUB_APP_ID", "HUB_RELEASE_HOLD_SECONDS"} <= names
    assert {name for name in names if name.startswith("HUB_")} - settings == set()


def test_every_file_compose_mounts_exists_and_every_volume_is_declared() -> None:
    config = compose()
    declared = set(config.get("volumes") or {})

    for name, service in config["services"].items():
        for source, _target in mounts(service):
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
        for dependency in service.get("depends_on") or {}:
            assert dependency in config["services"], (name, dependency)
        build = service.get("build")
        if build:
            assert (REPO / build / "Dockerfile").exists(), name


def test_the_dockerfile_copies_everything_pip_install_needs_and_runs_a_worker() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    copied = {path for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE) for path in line.split()[:-1]}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}

    for path in copied:
        assert (REPO / path).exists(), path
        assert path not in ignored, path
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    for package in packages:
        assert package.rstrip("*") in copied, package
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE)
    assert re.search(r'^CMD \["hub", "worker"\]$', text, re.MULTILINE)


# promtool, when it is installed


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run(
        [PROMTOOL, *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )


needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus); the rules were still parsed "
    "and their metric names checked",
)


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")],
    ids=["check-rules", "check-config"],
)
def test_promtool_accepts_the_rules_and_the_configuration(args: tuple[str, ...]) -> None:
    result = promtool(*args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    assert len(RULE_TESTS) >= 2
    result = promtool("test", "rules", *(path.name for path in RULE_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)
