"""The job side of brickwork: publish a Databricks job's completion event.

A Databricks job started by a brickwork `run_job` or `submit_run` step receives
three parameters: `brickwork_workflow_id`, `brickwork_step` and
`brickwork_token` (contract section 3). Its last task publishes, keyed by the
workflow id, to the events topic (default `brickwork.events`):

    {"type": "job_completed", "workflow_id": ..., "step": ..., "token": ...,
     "state": "SUCCESS" | "FAILED", "output": {...}, "message": "...",
     "run_id": 1234}          # run_id only when known (brickwork_run_id)

When the workflow's start command carried a W3C `traceparent` Kafka header,
the run also receives `brickwork_traceparent`, and the event goes out with
that `traceparent` header, so the trace goes on through the job.

Use it around the last task's code:

    from brickwork_job import BrickworkJob

    job = BrickworkJob.from_context()        # widgets in a notebook, else sys.argv
    with job.reporting() as report:
        rows = transform()
        report.output = {"rows": rows}       # any JSON object
    # SUCCESS with the output; an exception in the block publishes FAILED with
    # its message and is raised again, so the task fails too.

or as a decorator of a function that returns the output:

    @job.completes
    def main():
        return {"rows": transform()}

Kafka settings come from, in this order: the `kafka` argument, Databricks
secrets of `secret_scope` (dbutils.secrets.get), environment variables.

    setting              secret key (in secret_scope)   environment variable
    bootstrap.servers    kafka-bootstrap-servers        BRICKWORK_KAFKA_BOOTSTRAP_SERVERS
    security.protocol    kafka-security-protocol        BRICKWORK_KAFKA_SECURITY_PROTOCOL
    sasl.mechanisms      kafka-sasl-mechanism           BRICKWORK_KAFKA_SASL_MECHANISM
    sasl.username        kafka-sasl-username            BRICKWORK_KAFKA_SASL_USERNAME
    sasl.password        kafka-sasl-password            BRICKWORK_KAFKA_SASL_PASSWORD
    (more, JSON object)  kafka-properties               BRICKWORK_KAFKA_PROPERTIES
    events topic         events-topic                   BRICKWORK_EVENTS_TOPIC
    secret scope         -                              BRICKWORK_SECRET_SCOPE

The event is flushed before the block ends; a flush that does not finish in
`flush_timeout` seconds (default 30), or a delivery error, raises
`CompletionNotDelivered`, so the task fails rather than end silently
(brickwork's polling of jobs/runs/get then still ends the step). On a timeout
the event is purged from the producer first, so librdkafka does not send (or
retry) it later, after the task has failed.

JSON has no NaN or Infinity (brickwork refuses them): an output holding one
raises ValueError naming where, and the block publishes FAILED instead.

Needs `confluent-kafka` (PyPI, or Debian's python3-confluent-kafka).
Works with Python 3.8 and later.
"""

import contextlib
import functools
import json
import math
import os
import sys

__all__ = ["BrickworkJob", "CompletionNotDelivered", "MissingParameter", "Report"]

PARAMETERS = ("brickwork_workflow_id", "brickwork_step", "brickwork_token")
# Optional: set it to the dynamic value reference "{{job.run_id}}" in the job's
# parameters so the event names the run. Left out, brickwork keeps the run id
# it recorded when it started the run.
RUN_ID_PARAMETER = "brickwork_run_id"
# Set by brickwork when the workflow has a trace context: the completion event
# carries it back as its `traceparent` Kafka header.
TRACEPARENT_PARAMETER = "brickwork_traceparent"
OPTIONAL_PARAMETERS = (RUN_ID_PARAMETER, TRACEPARENT_PARAMETER)
DEFAULT_EVENTS_TOPIC = "brickwork.events"
# brickwork keeps at most 8 KiB of a message; there is no point sending more.
MAX_MESSAGE_CHARS = 8000

# (librdkafka property, secret key, environment variable)
_KAFKA_SETTINGS = (
    ("bootstrap.servers", "kafka-bootstrap-servers", "BRICKWORK_KAFKA_BOOTSTRAP_SERVERS"),
    ("security.protocol", "kafka-security-protocol", "BRICKWORK_KAFKA_SECURITY_PROTOCOL"),
    ("sasl.mechanisms", "kafka-sasl-mechanism", "BRICKWORK_KAFKA_SASL_MECHANISM"),
    ("sasl.username", "kafka-sasl-username", "BRICKWORK_KAFKA_SASL_USERNAME"),
    ("sasl.password", "kafka-sasl-password", "BRICKWORK_KAFKA_SASL_PASSWORD"),
)


class MissingParameter(Exception):
    """A brickwork_* parameter (or the Kafka bootstrap servers) is missing."""


class CompletionNotDelivered(Exception):
    """The completion event was not acknowledged by Kafka in time."""


class Report:
    """What the `reporting()` block sets: `output` (a dict) and `message`."""

    def __init__(self):
        self.output = {}
        self.message = ""


def _non_finite(value, path="output"):
    """(path, value) of the first NaN or +-Infinity in `value`, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, dict):
        children = (("%s.%s" % (path, key), item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        children = (("%s[%d]" % (path, i), item) for i, item in enumerate(value))
    else:
        return None
    for child_path, child in children:
        found = _non_finite(child, child_path)
        if found:
            return found
    return None


def _find_dbutils():
    """dbutils of the notebook or job this runs in, or None outside Databricks."""
    try:  # a notebook: dbutils lives in the notebook's namespace
        from IPython import get_ipython  # type: ignore

        shell = get_ipython()
        if shell is not None and "dbutils" in shell.user_ns:
            return shell.user_ns["dbutils"]
    except ImportError:
        pass
    try:  # Databricks Runtime 13+: also in Python script and wheel tasks
        from databricks.sdk.runtime import dbutils  # type: ignore

        return dbutils
    except Exception:  # not installed, or not on Databricks
        return None


def parse_argv(argv):
    """brickwork_* values from `--name value` or `--name=value` arguments
    (Python script and wheel tasks); other arguments are left alone."""
    wanted = PARAMETERS + OPTIONAL_PARAMETERS
    found = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in wanted:
                if eq:
                    found[name] = value
                elif i + 1 < len(argv):
                    found[name] = argv[i + 1]
                    i += 1
        i += 1
    return found


def _widgets(dbutils):
    """brickwork_* values from notebook widgets (notebook task parameters and
    job parameters both arrive as widgets)."""
    found = {}
    for name in PARAMETERS + OPTIONAL_PARAMETERS:
        try:
            value = dbutils.widgets.get(name)
        except Exception:  # no such widget
            continue
        if value:
            found[name] = value
    return found


class BrickworkJob:
    """One job run's completion, bound to its brickwork_* parameters."""

    def __init__(self, workflow_id, step, token, run_id=None, kafka=None,
                 secret_scope=None, events_topic=None, dbutils=None,
                 flush_timeout=30.0, producer_factory=None, traceparent=None):
        for name, value in zip(PARAMETERS, (workflow_id, step, token)):
            if not value:
                raise MissingParameter(
                    name + " is missing: is this the last task of a job started by brickwork?")
        self.workflow_id = workflow_id
        self.step = step
        self.token = token
        self.run_id = int(run_id) if run_id not in (None, "") else None
        self.traceparent = traceparent or None
        self.flush_timeout = flush_timeout
        self._dbutils = dbutils
        self._secret_scope = secret_scope or os.environ.get("BRICKWORK_SECRET_SCOPE") or None
        self._kafka = dict(kafka or {})
        self._events_topic = events_topic
        self._producer_factory = producer_factory
        self.published = None  # the last event sent, for logs and tests

    # ---- where the parameters come from

    @classmethod
    def from_argv(cls, argv=None, **kwargs):
        """From `--brickwork_workflow_id X --brickwork_step S --brickwork_token T`
        (default: sys.argv[1:])."""
        values = parse_argv(sys.argv[1:] if argv is None else argv)
        return cls._from_values(values, **kwargs)

    @classmethod
    def from_widgets(cls, dbutils=None, **kwargs):
        """From notebook widgets (a notebook task's parameters)."""
        dbutils = dbutils or _find_dbutils()
        if dbutils is None:
            raise MissingParameter("no dbutils: not running in a Databricks notebook")
        return cls._from_values(_widgets(dbutils), dbutils=dbutils, **kwargs)

    @classmethod
    def from_context(cls, argv=None, dbutils=None, **kwargs):
        """Widgets when running in a notebook with the parameters, else argv."""
        values = parse_argv(sys.argv[1:] if argv is None else argv)
        dbutils = dbutils or _find_dbutils()
        if dbutils is not None and not all(values.get(p) for p in PARAMETERS):
            from_widgets = _widgets(dbutils)
            if all(from_widgets.get(p) for p in PARAMETERS):
                values = from_widgets
        return cls._from_values(values, dbutils=dbutils, **kwargs)

    @classmethod
    def _from_values(cls, values, **kwargs):
        return cls(values.get("brickwork_workflow_id"), values.get("brickwork_step"),
                   values.get("brickwork_token"), run_id=values.get(RUN_ID_PARAMETER),
                   traceparent=values.get(TRACEPARENT_PARAMETER), **kwargs)

    # ---- publishing

    def _secret(self, key):
        if self._secret_scope is None:
            return None
        dbutils = self._dbutils or _find_dbutils()
        if dbutils is None:
            return None
        try:
            return dbutils.secrets.get(scope=self._secret_scope, key=key)
        except Exception:  # no such key in the scope: fall back to the environment
            return None

    def _setting(self, secret_key, env_name):
        value = self._secret(secret_key)
        if value:
            return value
        return os.environ.get(env_name) or None

    def kafka_config(self):
        """librdkafka properties for the producer (secrets included: never log it)."""
        config = {}
        extra = self._setting("kafka-properties", "BRICKWORK_KAFKA_PROPERTIES")
        if extra:
            config.update(json.loads(extra))
        for prop, secret_key, env_name in _KAFKA_SETTINGS:
            value = self._setting(secret_key, env_name)
            if value:
                config[prop] = value
        config.update(self._kafka)
        if not config.get("bootstrap.servers"):
            raise MissingParameter(
                "no Kafka bootstrap servers: pass kafka={'bootstrap.servers': ...}, put "
                "kafka-bootstrap-servers in the secret scope, or set "
                "BRICKWORK_KAFKA_BOOTSTRAP_SERVERS")
        # One event, written once and durably.
        config.setdefault("acks", "all")
        config.setdefault("enable.idempotence", True)
        config.setdefault("client.id", "brickwork-job")
        # The Java client's partitioner for keyed records, as every brickwork
        # producer uses: one workflow's events land on one partition.
        config.setdefault("partitioner", "murmur2_random")
        return config

    def events_topic(self):
        return (self._events_topic
                or self._setting("events-topic", "BRICKWORK_EVENTS_TOPIC")
                or DEFAULT_EVENTS_TOPIC)

    def event(self, state, output=None, message=""):
        """The job_completed event (contract section 3) as a dict."""
        if state not in ("SUCCESS", "FAILED", "CANCELED", "TIMEDOUT"):
            raise ValueError("state must be SUCCESS, FAILED, CANCELED or TIMEDOUT")
        output = {} if output is None else output
        if not isinstance(output, dict):
            raise TypeError("output must be a dict (a JSON object), not "
                            + type(output).__name__)
        bad = _non_finite(output)
        if bad:
            raise ValueError("%s is %r, which JSON cannot carry (brickwork refuses NaN and "
                             "Infinity): use null or a string instead" % bad)
        event = {"type": "job_completed", "workflow_id": self.workflow_id, "step": self.step,
                 "token": self.token, "state": state, "output": output}
        if message:
            event["message"] = str(message)[:MAX_MESSAGE_CHARS]
        if self.run_id is not None:
            event["run_id"] = self.run_id
        return event

    def publish(self, state, output=None, message=""):
        """Publishes the completion event and waits until Kafka has it."""
        event = self.event(state, output, message)
        payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if self._producer_factory is not None:
            producer = self._producer_factory(self.kafka_config())
        else:
            from confluent_kafka import Producer  # only needed when publishing

            producer = Producer(self.kafka_config())
        errors = []

        def delivered(err, _msg):
            if err is not None:
                errors.append(err)

        headers = [("traceparent", self.traceparent.encode("ascii"))] if self.traceparent else []
        producer.produce(self.events_topic(), value=payload.encode("utf-8"),
                         key=self.workflow_id.encode("utf-8"), headers=headers,
                         on_delivery=delivered)
        remaining = producer.flush(self.flush_timeout)
        if remaining:
            # Queued or in flight: librdkafka would otherwise keep
            # retrying it, and a SUCCESS could arrive after the task failed.
            producer.purge()
            producer.poll(0)  # serves the purge's delivery report
            raise CompletionNotDelivered(
                "the completion event for %s/%s was not delivered within %ss (purged: it is "
                "not sent later)" % (self.workflow_id, self.step, self.flush_timeout))
        if errors:
            raise CompletionNotDelivered(
                "the completion event for %s/%s was refused: %s"
                % (self.workflow_id, self.step, errors[0]))
        self.published = event
        return event

    # ---- around the task's code

    @contextlib.contextmanager
    def reporting(self):
        """SUCCESS with `report.output` when the block ends normally; FAILED with
        the exception's message when it raises (the exception then propagates)."""
        report = Report()
        try:
            yield report
        except SystemExit as stop:
            if stop.code in (None, 0):
                self.publish("SUCCESS", report.output, report.message)
            else:
                self.publish("FAILED", {}, "exit status %s" % stop.code)
            raise
        except BaseException as error:  # KeyboardInterrupt included: the run ends here
            self.publish("FAILED", {}, "%s: %s" % (type(error).__name__, error))
            raise
        else:
            self._publish_success(report.output, report.message)

    def _publish_success(self, output, message):
        try:
            self.event("SUCCESS", output)  # names a NaN or Infinity and where
            json.dumps(output, allow_nan=False)
        except (TypeError, ValueError) as bad:
            self.publish("FAILED", {}, "the task's output is not a valid JSON object: %s" % bad)
            raise
        self.publish("SUCCESS", output, message)

    def completes(self, function):
        """Decorator: the function's return value (a dict, or None) is the output."""

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.reporting() as report:
                result = function(*args, **kwargs)
                report.output = {} if result is None else result
            return result

        return wrapper


def main(argv=None):
    """`python3 brickwork_job.py --brickwork_workflow_id ... [--state FAILED]
    [--output JSON] [--message TEXT]`: publish an event from a shell step."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--state", default="SUCCESS",
                        choices=("SUCCESS", "FAILED", "CANCELED", "TIMEDOUT"))
    parser.add_argument("--output", default="{}", help="a JSON object")
    parser.add_argument("--message", default="")
    argv = sys.argv[1:] if argv is None else argv
    args, _ = parser.parse_known_args(argv)
    job = BrickworkJob.from_argv(argv)
    event = job.publish(args.state, json.loads(args.output), args.message)
    print("published %s for %s/%s" % (event["state"], job.workflow_id, job.step))
    return 0


if __name__ == "__main__":
    sys.exit(main())
