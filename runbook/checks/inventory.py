"""Checks of an inventory: targets, groups, the severity scale, policies."""

from __future__ import annotations

from collections.abc import Iterator

from runbook.checks.common import doc_at, suggest
from runbook.errors import Problem
from runbook.fleet import computed
from runbook.load.yamlsrc import DataPath
from runbook.model import RESERVED_DATABASES, EnvRef, Inventory, seconds
from runbook.schedule.spec import zone_of


def check_inventory(inv: Inventory) -> list[Problem]:
    doc = inv.doc
    assert doc is not None
    problems: list[Problem] = []
    names = set(inv.targets) | inv.group_names()
    if inv.default_target and inv.default_target not in names:
        problems.append(
            doc_at(
                doc,
                ("default_target",),
                f"unknown target or group {inv.default_target!r}{suggest(inv.default_target, names)}",
                "unknown-target",
            )
        )
    if inv.scheduler_timezone is not None and zone_of(inv.scheduler_timezone) is None:
        problems.append(
            doc_at(
                doc,
                ("scheduler", "timezone"),
                f"unknown time zone {inv.scheduler_timezone!r}",
                "schedule",
            )
        )
    for name, target in inv.targets.items():
        if target.sandbox_db in RESERVED_DATABASES:
            problems.append(
                doc_at(
                    doc,
                    ("targets", name, "dsn", "dbname"),
                    f"{target.sandbox_db!r} cannot be a sandbox database: it is the server's "
                    "own or the journal's",
                    "reserved-name",
                )
            )
    for group in [*inv.groups, *inv.computed]:  # listed or computed, a group is not a target
        if group in inv.targets:
            problems.append(
                doc_at(
                    doc,
                    ("groups", group),
                    f"group {group!r} has the name of a target",
                    "name-clash",
                    key=True,
                )
            )
    for group, members in inv.groups.items():
        raw = doc.data["groups"][group]
        for i, member in enumerate(members):
            if member not in inv.targets:
                path: DataPath = (
                    ("groups", group, "targets", i)
                    if isinstance(raw, dict)
                    else ("groups", group, i)
                )
                problems.append(
                    doc_at(
                        doc,
                        path,
                        f"unknown target {member!r}{suggest(member, inv.targets)}",
                        "unknown-target",
                    )
                )
    problems += _computed_problems(inv)
    problems += _scale_problems(inv)
    problems += _policy_problems(inv)
    problems += _channel_problems(inv)
    if inv.journal.backend == "postgres" and inv.journal.dsn is None:
        problems.append(doc_at(doc, ("journal",), "a postgres journal needs a dsn", "journal"))
    return problems


def _computed_problems(inv: Inventory) -> list[Problem]:
    """A computed group's cluster is a target; its fleet file is read and checked
    here, before anything connects (the cluster is listed when a run starts)."""
    doc = inv.doc
    assert doc is not None
    problems = []
    for name, group in inv.computed.items():
        if group.cluster is not None and group.cluster not in inv.targets:
            problems.append(
                doc_at(
                    doc,
                    ("groups", name, "targets_from", "cluster"),
                    f"unknown target {group.cluster!r}{suggest(group.cluster, inv.targets)}",
                    "unknown-target",
                )
            )
    return problems + computed.file_problems(inv)


def _scale_problems(inv: Inventory) -> Iterator[Problem]:
    doc = inv.doc
    assert doc is not None
    seen: dict[str, int] = {}
    for i, level in enumerate(inv.scale.levels):
        if "severities" not in doc.data:
            return
        for name in (level.name, *level.aliases):
            if name.upper() in seen:
                yield doc_at(
                    doc,
                    ("severities", i),
                    f"severity name {name!r} is used twice in the scale",
                    "duplicate-severity",
                )
            seen[name.upper()] = i


def _policy_problems(inv: Inventory) -> Iterator[Problem]:
    doc = inv.doc
    assert doc is not None
    scale = inv.scale
    for name, policy in inv.policies.items():
        base: DataPath = ("policies", name)
        if scale.get(policy.threshold) is None and "threshold" in doc.data["policies"][name]:
            yield doc_at(
                doc,
                (*base, "threshold"),
                f"unknown severity {policy.threshold!r}; the scale is {', '.join(scale.names())}",
                "unknown-severity",
            )
        for i, channel in enumerate(policy.drill_route):
            if channel not in inv.channels:
                yield doc_at(
                    doc,
                    (*base, "drill_route", i),
                    f"unknown channel {channel!r}{suggest(channel, inv.channels)}",
                    "unknown-channel",
                )
        for sev, sp in policy.severities.items():
            if scale.get(sev) is None:
                yield doc_at(
                    doc,
                    (*base, "severities", sev),
                    f"unknown severity {sev!r}; the scale is {', '.join(scale.names())}",
                    "unknown-severity",
                    key=True,
                )
            previous = -1.0
            for i, level in enumerate(sp.levels):
                lpath = (*base, "severities", sev, "levels", i)
                if level.after < previous:
                    yield doc_at(
                        doc,
                        (*lpath, "after"),
                        "levels must be in order of their delay",
                        "level-order",
                    )
                previous = level.after
                for j, recipient in enumerate(level.notify):
                    if recipient.channel not in inv.channels:
                        raw = doc.data["policies"][name]["severities"][sev]["levels"][i]["notify"][
                            j
                        ]
                        rpath = (
                            (*lpath, "notify", j)
                            if isinstance(raw, str)
                            else (*lpath, "notify", j, "channel")
                        )
                        yield doc_at(
                            doc,
                            rpath,
                            f"unknown channel {recipient.channel!r}{suggest(recipient.channel, inv.channels)}",
                            "unknown-channel",
                        )


# Channels that POST to a URL; the URL must be http(s): file://, ftp:// and the
# like would read or write where no notification belongs.
_URL_CHANNELS = ("webhook", "slack", "pagerduty")
_MAX_GRACE = 60.0


def _channel_problems(inv: Inventory) -> Iterator[Problem]:
    from runbook.alerts.channels import MAX_TIMEOUT
    from runbook.alerts.httpclient import is_http_url

    doc = inv.doc
    assert doc is not None
    for name, channel in inv.channels.items():
        base: DataPath = ("channels", name)
        url = channel.settings.get("url")
        if channel.type in _URL_CHANNELS and isinstance(url, str) and not is_http_url(url):
            yield doc_at(
                doc,
                (*base, "url"),
                f"channel {name!r}: the url must be an http:// or https:// URL, not {url!r}",
                "channel-url",
            )
        default = url.default if isinstance(url, EnvRef) else None
        if channel.type in _URL_CHANNELS and default is not None and not is_http_url(default):
            yield doc_at(
                doc,
                (*base, "url", "default"),
                f"channel {name!r}: the url must be an http:// or https:// URL",
                "channel-url",
            )
        timeout = seconds(channel.settings.get("timeout"))
        if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:
            yield doc_at(
                doc,
                (*base, "timeout"),
                f"channel {name!r}: a delivery attempt's timeout must be more than 0 and at most {MAX_TIMEOUT:g}s",
                "channel-timeout",
            )
    defaults = doc.data.get("defaults") if isinstance(doc.data, dict) else None
    grace = seconds(defaults.get("delivery_grace")) if isinstance(defaults, dict) else None
    if grace is not None and not 0 <= grace <= _MAX_GRACE:
        yield doc_at(
            doc,
            ("defaults", "delivery_grace"),
            f"delivery_grace must be at most {_MAX_GRACE:g}s",
            "delivery-grace",
        )
