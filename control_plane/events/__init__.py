"""Lifecycle events: CloudEvents to webhooks and HTTP sinks, with retries and a dead-letter file.

``emit(event_type, subject, data)`` is what every step calls on every transition. It:

1. builds a CloudEvent (spec 1.0, structured JSON mode) of type ``ae.sovereign-mlops.<event_type>``
   and source ``mlctl/<host>``;
2. appends it to the local event log ``$MLCTL_HOME/events/events.jsonl`` (always: this is the record
   the metrics exporter folds into Prometheus counters, and what tests and the demo read);
3. delivers it to each sink in ``$MLCTL_HOME/events.yaml`` (or ``$MLCTL_EVENTS_FILE``), retrying with
   bounded exponential backoff inside a short total budget; what still fails goes to
   ``$MLCTL_HOME/events/dead-letter.jsonl``.

A sink outage never fails the caller unless that sink says ``required: true``. Event data is
scrubbed before it leaves: values under secret-looking keys and strings that carry PII are
replaced by a marker naming the kind, never the value.

In-process subscribers (``subscribe(event_type, handler)``) are how one domain reacts to another's
event without importing it: the registry emits ``model.registered``; the retrain triggers
(``monitor.retrain``) subscribe to it, wired by the composition roots (``monitor.retrain_hook.subscribe``
from the service layer, the CLI and the pipeline's register step). A handler runs after the event
is recorded and delivered; its ``MlctlError`` reaches the emitter.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError
from control_plane.events.config import Sink, load_sinks
from control_plane.events.delivery import DeliveryResult, deliver
from control_plane.events.scrub import scrub
from control_plane.output import iso_utc
from control_plane.settings import state_dir

TYPE_PREFIX = "ae.sovereign-mlops."
SPEC_VERSION = "1.0"

__all__ = [
    "TYPE_PREFIX",
    "DeliveryResult",
    "Emitted",
    "Sink",
    "dead_letter_path",
    "emit",
    "event_log_path",
    "read_event_log",
    "subscribe",
]

Handler = Callable[[dict[str, Any]], None]
_subscribers: dict[str, list[Handler]] = {}


def _full_type(event_type: str) -> str:
    return event_type if event_type.startswith(TYPE_PREFIX) else TYPE_PREFIX + event_type


def subscribe(event_type: str, handler: Handler) -> None:
    """Call ``handler(event)`` in this process for every ``event_type`` emitted here (idempotent:
    subscribing the same handler twice calls it once)."""
    handlers = _subscribers.setdefault(_full_type(event_type), [])
    if handler not in handlers:
        handlers.append(handler)


@dataclass(frozen=True)
class Emitted:
    """What ``emit`` did: the event as sent and one result per sink."""

    event: dict[str, Any]
    results: tuple[DeliveryResult, ...]


def event_log_path() -> Path:
    return state_dir("events") / "events.jsonl"


def dead_letter_path() -> Path:
    return state_dir("events") / "dead-letter.jsonl"


def _source() -> str:
    return f"mlctl/{socket.gethostname()}"


def build_event(event_type: str, subject: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The structured-mode CloudEvent as a JSON-ready dict (validated by the cloudevents package)."""
    from cloudevents.http import CloudEvent  # lazy: the cloudevents SDK, only when an event is built

    full_type = _full_type(event_type)
    attributes = {
        "specversion": SPEC_VERSION,
        "type": full_type,
        "source": _source(),
        "subject": subject,
        "id": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }
    # Round-trip through JSON so the payload is exactly what a sink will parse (no tuples, dates...).
    clean = json.loads(json.dumps(scrub(dict(data)), default=str))
    event = CloudEvent(attributes, clean)  # raises on a malformed attribute set
    return {**event.get_attributes(), "data": event.get_data()}


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    # One write() on an O_APPEND descriptor: concurrent mlctl processes never interleave lines.
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@contextlib.contextmanager
def dead_letter_lock() -> Iterator[None]:
    """Held for microseconds around a dead-letter append, and around replay's rename of the file,
    so that an append can never land in a file that replay has already taken away."""
    fd = os.open(state_dir("events") / "dead-letter.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_dead_letter(record: Mapping[str, Any]) -> None:
    with dead_letter_lock():
        _append_line(dead_letter_path(), record)


def emit(event_type: str, subject: str, data: Mapping[str, Any]) -> Emitted:
    """Record and deliver one lifecycle event. Raises only when a ``required`` sink is unreachable."""
    event = build_event(event_type, subject, data)
    _append_line(event_log_path(), event)
    results: list[DeliveryResult] = []
    failed_required: list[DeliveryResult] = []
    for sink in load_sinks():
        if not sink.accepts(event["type"]):
            continue
        result = deliver(sink, event)
        results.append(result)
        if not result.ok:
            append_dead_letter(
                {
                    "sink": sink.name,
                    "url": sink.redacted_url,
                    "attempts": result.attempts,
                    "error": result.error,
                    "failed_at": iso_utc(time.time()),  # ISO-8601 UTC, as every timestamp mlctl writes
                    "event": event,
                },
            )
            if sink.required:
                failed_required.append(result)
    if failed_required:
        names = ", ".join(r.sink for r in failed_required)
        raise MlctlError(
            f"event {event['type']} could not be delivered to required sink(s): {names} "
            f"({failed_required[0].error}); it is in {dead_letter_path()}",
            hint="bring the sink back (or set `required: false` for it in events.yaml), then replay "
            "the dead-letter file with `mlctl monitor events replay`",
        )
    for handler in list(_subscribers.get(event["type"], ())):
        handler(event)
    return Emitted(event=event, results=tuple(results))


def read_event_log(path: Path | None = None) -> list[dict[str, Any]]:
    """Every event in the local log, oldest first (for tests, the demo and `mlctl monitor events`)."""
    path = path or event_log_path()
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash: skip it, keep the rest
    return out
