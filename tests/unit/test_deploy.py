"""The production stack as files: alert rules, Prometheus, Grafana, docker-compose.yml, the Kafka security
files in deploy/kafka and the Dockerfile.

Docker does not run on the development machines, so the stack is checked by reading it: every metric name an
alert or a dashboard panel uses is one the hub exposes, every alert tells the on-call engineer what to do
without personal data, the compose file starts the services the README promises with settings the hub
reads, and everything it mounts or copies exists. Kafka: every listener authenticates over TLS, the broker
denies what deploy/kafka/acls.txt does not grant, and the grants give each agency, unit and the hub exactly
what they use; deploy/kafka/init.sh, which creates the users and grants, is run with stand-ins for the Kafka
tools. When promtool is installed (Debian: `prometheus`), the rules and the configuration are also checked by
it and the rules' unit tests run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client import REGISTRY

import hub.metrics  # noqa: F401  (registers the hub's metrics)
from connectors.queue_reader import reader_group
from hub.reference import load_units
from hub.runtime.lanes import ordinary_group, urgent_group
from hub.runtime.topics import hub_topics
from hub.settings import AGENCY_SOURCES, Settings
from schemas import OUTBOUND_RECIPIENTS

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
RULE_TESTS = sorted(PROMETHEUS.glob("*_test.yml"))
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "hub.json"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
KAFKA_FILES = REPO / "deploy" / "kafka"
ACLS = KAFKA_FILES / "acls.txt"
INIT_SCRIPT = KAFKA_FILES / "init.sh"
BROKER_SCRIPT = KAFKA_FILES / "start-broker.sh"

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
            environment(services[name])["HUB_BROKER"]
            in listeners(kafka["KAFKA_ADVERTISED_LISTENERS"]).values()
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
    assert environment(services["kafka-init"])["FAUST_LEADER_TOPIC"] == leader_topic


def test_every_hub_variable_set_for_the_workers_is_a_setting_the_hub_reads() -> None:
    services = compose()["services"]
    names = {key for service in services.values() for key in environment(service)}
    names |= set(re.findall(r"\b(HUB_\w+)=", DOCKERFILE.read_text(encoding="utf-8")))
    settings = {f"HUB_{field.upper()}" for field in Settings.model_fields}

    assert {"HUB_BROKER", "HUB_DATABASE_URL", "HUB_APP_ID", "HUB_RELEASE_HOLD_SECONDS"} <= names
    assert {name for name in names if name.startswith("HUB_")} - settings == set()


# Kafka: authentication, authorisation, and the users and grants kafka-init creates

AGENCY_PRINCIPALS = {f"agency-{source}": source for source in AGENCY_SOURCES}
UNIT_CODES = [unit.code for unit in load_units(Settings()).units]
UNIT_PRINCIPALS = {f"unit-{code}": code for code in UNIT_CODES}
SUPER_USERS = {"admin", "broker"}
ACL_OPERATIONS = {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION"}
ACL_OPERATIONS |= {"DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALL"}
# What only the admin principal (a super user, so not in the file) may do.
ADMIN_OPERATIONS = {"DELETE", "ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "IDEMPOTENT_WRITE", "ALL"}


@dataclass(frozen=True)
class Grant:
    principal: str
    kind: str  # topic or group
    pattern: str  # literal or prefixed
    name: str
    operations: frozenset[str]

    def covers(self, kind: str, name: str) -> bool:
        if kind != self.kind:
            return False
        return name == self.name if self.pattern == "literal" else name.startswith(self.name)


def grants() -> list[Grant]:
    """deploy/kafka/acls.txt, as init.sh reads it: text after `#` is a comment, then five or more fields."""
    found = []
    for line in ACLS.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            principal, kind, pattern, name, *operations = text.split()
            found.append(Grant(principal, kind, pattern, name, frozenset(operations)))
    return found


def rights(principal: str, kind: str, name: str) -> set[str]:
    """The operations `principal` may do on the topic or group `name`."""
    return {
        operation
        for grant in grants()
        if grant.principal == principal and grant.covers(kind, name)
        for operation in grant.operations
    }


def of(principal: str) -> set[tuple[str, str, str, frozenset[str]]]:
    return {(g.kind, g.pattern, g.name, g.operations) for g in grants() if g.principal == principal}


def password_variable(principal: str) -> str:
    """Where kafka-init and the broker find a principal's password (init.sh: upper case, `-` as `_`)."""
    return f"SASL_PASSWORD_{principal.upper().replace('-', '_')}"


def listeners(value: str) -> dict[str, str]:
    """KAFKA_LISTENERS or KAFKA_ADVERTISED_LISTENERS: listener name -> host:port."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_every_kafka_listener_authenticates_over_tls() -> None:
    kafka = environment(compose()["services"]["kafka"])
    protocols = dict(item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    bound = listeners(kafka["KAFKA_LISTENERS"])
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]

    assert set(bound) == set(protocols) and set(advertised) <= set(bound)
    assert set(protocols.values()) == {"SASL_SSL"}
    assert "PLAINTEXT" not in " ".join(value for key, value in kafka.items() if "LISTENER" in key)
    assert protocols[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_SSL"
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    # KRaft controllers cannot check SCRAM; PLAIN there, inside TLS, on a listener that is neither advertised nor
    # published.
    assert kafka[f"KAFKA_LISTENER_NAME_{controller}_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert controller not in advertised
    published = {port.rsplit(":", 1)[-1] for port in compose()["services"]["kafka"]["ports"]}
    assert published == {advertised["HOST"].rsplit(":", 1)[-1]}
    # The broker checks its clients' passwords; its own certificate is the operator's, never in the repository.
    assert kafka["KAFKA_SSL_KEYSTORE_FILENAME"] and kafka["KAFKA_SSL_TRUSTSTORE_LOCATION"].startswith(
        "/etc/kafka/ca/"
    )


def test_the_broker_denies_whatever_is_not_granted() -> None:
    kafka = environment(compose()["services"]["kafka"])

    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert set(kafka["KAFKA_SUPER_USERS"].split(";")) == {f"User:{name}" for name in SUPER_USERS}


def test_the_grants_file_names_known_principals_resources_and_operations() -> None:
    principals = {grant.principal for grant in grants()}

    assert principals == {"hub", *AGENCY_PRINCIPALS, *UNIT_PRINCIPALS}
    assert not principals & SUPER_USERS
    for grant in grants():
        assert grant.kind in {"topic", "group"}, grant
        assert grant.pattern in {"literal", "prefixed"}, grant
        assert grant.operations and grant.operations <= ACL_OPERATIONS, grant


def test_each_agency_may_only_publish_to_its_own_two_topics_and_read_what_the_hub_writes_for_it() -> None:
    settings = Settings(topic_prefix="")

    for principal, source in AGENCY_PRINCIPALS.items():
        own = {settings.inbound_topic(source), settings.urgent_topic(source)}
        expected = {("topic", "literal", topic, frozenset({"WRITE", "DESCRIBE"})) for topic in own}
        if source in OUTBOUND_RECIPIENTS:
            own.add(settings.outbound_topic(source))
            expected.add(
                ("topic", "literal", settings.outbound_topic(source), frozenset({"READ", "DESCRIBE"}))
            )
        assert of(principal) == expected
        for topic in hub_topics(settings, UNIT_CODES):
            if topic not in own:
                assert rights(principal, "topic", topic) == set(), (principal, topic)


def test_each_unit_may_only_read_its_own_queue_in_its_own_consumer_groups() -> None:
    settings = Settings(topic_prefix="")

    for principal, code in UNIT_PRINCIPALS.items():
        assert {operations for *_, operations in of(principal)} == {frozenset({"READ", "DESCRIBE"})}
        assert rights(principal, "topic", settings.unit_topic(code)) == {"READ", "DESCRIBE"}
        for group in (reader_group("", code), reader_group("", code, "case-system")):
            assert rights(principal, "group", group) == {"READ", "DESCRIBE"}, (principal, group)
        for topic in hub_topics(settings, UNIT_CODES):
            if topic != settings.unit_topic(code):
                assert rights(principal, "topic", topic) == set(), (principal, topic)
        for other in UNIT_CODES:
            if other != code:
                for group in (reader_group("", other), reader_group("", other, "case-system")):
                    assert rights(principal, "group", group) == set(), (principal, group)
        assert rights(principal, "group", "victim-contact-hub") == set()


def test_only_the_admin_principal_may_delete_alter_or_administer() -> None:
    for grant in grants():
        assert not grant.operations & ADMIN_OPERATIONS, grant
        if grant.principal != "hub":
            assert "CREATE" not in grant.operations, grant


def test_the_hub_principal_may_do_everything_the_workers_do_and_no_more() -> None:
    services = compose()["services"]
    env = environment(services[WORKERS[0]])
    app_id = env["HUB_APP_ID"]
    settings = Settings(topic_prefix="", app_id=app_id)

    for topic in hub_topics(settings, UNIT_CODES):
        # READ: agency events, retries, dead letters, and the unit queues HTTP delivery follows; WRITE: all but
        # the agency topics are the hub's own, and `hub dlq replay` republishes to those; CREATE: at start.
        assert rights("hub", "topic", topic) >= {"READ", "WRITE", "DESCRIBE", "CREATE"}, topic
    leader = environment(services["kafka-init"])["FAUST_LEADER_TOPIC"]
    assert rights("hub", "topic", leader) >= {"READ", "WRITE"}
    groups = {app_id, urgent_group(app_id), ordinary_group(app_id)}
    assert {grant.name for grant in grants() if grant.principal == "hub" and grant.kind == "group"} == groups
    for group in groups:
        assert rights("hub", "group", group) == {"READ", "DESCRIBE"}
    for code in UNIT_CODES:
        assert rights("hub", "group", reader_group("", code)) == set()
    # Nothing beyond its own topic families: not Kafka's internal topics, nor anybody else's.
    for other in ("__consumer_offsets", "__cluster_metadata", "payroll.events"):
        assert rights("hub", "topic", other) == set(), other


def test_the_workers_connect_as_the_hub_principal_with_settings_the_hub_reads() -> None:
    services = compose()["services"]
    for name in WORKERS:
        env = environment(services[name])
        mounted = dict(mounts(services[name]))

        assert env["HUB_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["HUB_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["HUB_KAFKA_SASL_USERNAME"] == "hub"
        assert re.fullmatch(r"\$\{SASL_PASSWORD_HUB:\?[^}]*\}", env["HUB_KAFKA_SASL_PASSWORD"])
        assert Path(env["HUB_KAFKA_SSL_CAFILE"]).parent == Path(mounted["./deploy/kafka/ca"])
        Settings(
            kafka_security_protocol=env["HUB_KAFKA_SECURITY_PROTOCOL"],
            kafka_sasl_mechanism=env["HUB_KAFKA_SASL_MECHANISM"],
            kafka_sasl_username=env["HUB_KAFKA_SASL_USERNAME"],
            kafka_sasl_password="from-the-environment",
        )


def test_every_kafka_password_comes_from_the_environment() -> None:
    services = compose()["services"]
    init = environment(services["kafka-init"])
    kafka = environment(services["kafka"])
    variables = {
        password_variable(principal) for principal in {"admin", *(grant.principal for grant in grants())}
    }

    assert {key for key in init if key.startswith("SASL_PASSWORD_")} == variables
    assert {key for key in kafka if key.startswith("SASL_PASSWORD_")} == {
        "SASL_PASSWORD_BROKER",
        "SASL_PASSWORD_ADMIN",
    }
    for env in (init, kafka):
        for key, value in env.items():
            if key.startswith("SASL_PASSWORD_"):
                assert value == f"${{{key}:?set {key}}}", key
    # The operator's certificates, keystore and its password stay out of git.
    for folder in ("ca", "secrets"):
        ignored = (KAFKA_FILES / folder / ".gitignore").read_text(encoding="utf-8").split()
        assert "*" in ignored and "!.gitignore" in ignored, folder


def test_the_broker_script_formats_storage_with_the_two_users_kraft_needs_first() -> None:
    text = BROKER_SCRIPT.read_text(encoding="utf-8")
    kafka = compose()["services"]["kafka"]

    assert kafka["command"] == ["bash", "/etc/kafka/hub/start-broker.sh"]
    assert dict(mounts(kafka))["./deploy/kafka/start-broker.sh"] == "/etc/kafka/hub/start-broker.sh"
    for user, variable in (("broker", "SASL_PASSWORD_BROKER"), ("admin", "SASL_PASSWORD_ADMIN")):
        assert f'--add-scram "SCRAM-SHA-512=[name={user},password=${variable}]"' in text
    assert "--ignore-formatted" in text and "exec /etc/kafka/docker/launch" in text
    assert subprocess.run(["bash", "-n", str(BROKER_SCRIPT)], check=False).returncode == 0


STAND_IN = """#!{python}
import json, os, sys
args = sys.argv[1:]
files = {{flag: open(args[i + 1]).read() for i, flag in enumerate(args[:-1])
          if flag in ("--command-config", "--add-config-file")}}
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps({{"tool": os.path.basename(sys.argv[0]), "args": args, "files": files}}) + "\\n")
"""


def run_init(tmp_path: Path, passwords: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """init.sh as kafka-init runs it, with stand-ins for the Kafka tools that record how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-configs.sh", "kafka-acls.sh", "kafka-topics.sh"):
        (bin_dir / tool).write_text(STAND_IN.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SASL_PASSWORD_")}
    env |= {"KAFKA_BIN": str(bin_dir), "KAFKA_ACLS": str(ACLS), "KAFKA_CA": "/ca.crt", "CALLS": str(calls)}
    env |= {"FAUST_LEADER_TOPIC": "victim-contact-hub-__assignor-__leader", **passwords}
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return result, [json.loads(line) for line in lines]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_kafka_init_creates_every_user_and_exactly_the_grants_in_the_file(tmp_path: Path) -> None:
    principals = sorted({grant.principal for grant in grants()})
    passwords = {
        password_variable(principal): f"Pw{index}x{index * 7919}"
        for index, principal in enumerate(["admin", *principals])
    }
    mounted = dict(mounts(compose()["services"]["kafka-init"]))

    result, calls = run_init(tmp_path, passwords)

    assert result.returncode == 0, result.stderr
    assert mounted["./deploy/kafka/acls.txt"] == "/etc/kafka/hub/acls.txt"
    assert mounted["./deploy/kafka/init.sh"] == "/etc/kafka/hub/init.sh"
    for call in calls:
        admin = call["files"]["--command-config"]
        assert 'username="admin"' in admin and f'password="{passwords["SASL_PASSWORD_ADMIN"]}"' in admin
        assert "security.protocol=SASL_SSL" in admin and "sasl.mechanism=SCRAM-SHA-512" in admin
        assert not set(passwords.values()) & {
            word for arg in call["args"] for word in re.split(r"[=,\[\]]", arg)
        }
    users = {
        option(call["args"], "--entity-name"): call["files"]["--add-config-file"].strip()
        for call in calls
        if call["tool"] == "kafka-configs.sh"
    }
    assert users == {
        principal: f"SCRAM-SHA-512=[iterations=8192,password={passwords[password_variable(principal)]}]"
        for principal in principals
    }
    created = {
        Grant(
            principal=option(call["args"], "--allow-principal").removeprefix("User:"),
            kind=next(kind for kind in ("topic", "group") if f"--{kind}" in call["args"]),
            pattern=option(call["args"], "--resource-pattern-type"),
            name=next(
                option(call["args"], f"--{kind}")
                for kind in ("topic", "group")
                if f"--{kind}" in call["args"]
            ),
            operations=frozenset(
                call["args"][i + 1] for i, arg in enumerate(call["args"]) if arg == "--operation"
            ),
        )
        for call in calls
        if call["tool"] == "kafka-acls.sh"
    }
    assert created == set(grants())
    topics = [call for call in calls if call["tool"] == "kafka-topics.sh"]
    assert [option(call["args"], "--topic") for call in topics] == ["victim-contact-hub-__assignor-__leader"]


def test_kafka_init_stops_before_changing_anything_when_a_password_is_missing(tmp_path: Path) -> None:
    principals = {"admin", *(grant.principal for grant in grants())}
    passwords = {password_variable(p): "Pw1" for p in principals}
    del passwords["SASL_PASSWORD_UNIT_YH"]

    result, calls = run_init(tmp_path, passwords)

    assert result.returncode != 0
    assert "SASL_PASSWORD_UNIT_YH is not set" in result.stderr
    assert calls == []


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
    assert re.search(
        r"^RUN pip install --require-hashes -r requirements\.lock && pip install --no-deps \.", text, re.M
    )
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


def test_the_hub_connects_to_postgresql_as_a_role_of_its_own_not_the_superuser() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    superuser = postgres["environment"]["POSTGRES_USER"]
    for name in WORKERS:
        url = services[name]["environment"]["HUB_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://hub:") and superuser != "hub"
    mounted = dict(mounts(postgres))
    script = REPO / "deploy" / "postgres" / "10-hub-role.sh"
    assert mounted["./deploy/postgres/10-hub-role.sh"].startswith("/docker-entrypoint-initdb.d/")
    text = script.read_text()
    role = re.search(r"CREATE ROLE hub (.*?);", text).group(1)
    for refused in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS"):
        assert refused in role
    assert "CREATE DATABASE hub OWNER hub" in text and "REVOKE ALL ON DATABASE hub FROM PUBLIC" in text
    assert (
        postgres["environment"]["ROLE_PASSWORD_HUB"] == "${HUB_POSTGRES_PASSWORD:?set HUB_POSTGRES_PASSWORD}"
    )
    assert "$ROLE_PASSWORD_HUB" in text and "PASSWORD :'password'" in role  # never written in the file


LOCK = REPO / "requirements.lock"


def _locked() -> dict[str, tuple[str, int]]:
    """Each package the lock pins: its version and how many file hashes it allows."""
    pins: dict[str, tuple[str, int]] = {}
    name = ""
    for line in LOCK.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line):
            name = canonicalize_name(match.group(1))
            pins[name] = (match.group(2), 0)
        elif "--hash=sha256:" in line and name:
            version, hashes = pins[name]
            pins[name] = (version, hashes + 1)
    return pins


def test_the_lock_file_pins_every_dependency_of_pyproject_within_its_range_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["test"]
    ]
    pins = _locked()
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement.name} is in pyproject.toml but not in requirements.lock (regenerate it)"
        )
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (requirement, pins[name][0])
    assert all(hashes > 0 for _, hashes in pins.values())  # every file pip may install is named by its hash


def test_dev_and_the_image_install_exactly_the_lock() -> None:
    dev = (REPO / "dev").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in dev
    assert "pip install --quiet --no-deps -e ." in dev
    dockerfile = DOCKERFILE.read_text()
    assert "pip install --require-hashes -r requirements.lock && pip install --no-deps ." in dockerfile
    assert re.search(r"^COPY .*requirements\.lock", dockerfile, flags=re.MULTILINE)
