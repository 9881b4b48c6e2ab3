"""Unit tests of brickwork_job.py: where parameters and Kafka settings come
from, and that an undelivered event fails the task. The end-to-end path (a real
daemon, the mock Kafka cluster) is tests/integration/job_side_e2e_test.cpp.

    python3 -m unittest -v test_brickwork_job     (from integrations/databricks)
"""
import json
import os
import socket
import time
import unittest
from unittest import mock

import brickwork_job
from brickwork_job import BrickworkJob, CompletionNotDelivered, MissingParameter

ARGV = ["--brickwork_workflow_id", "order-1", "--brickwork_step=transform",
        "--brickwork_token", "1.abc"]


class FakeDbutils:
    """The parts of dbutils the helper uses: widgets.get and secrets.get."""

    class _Widgets:
        def __init__(self, values):
            self.values = values

        def get(self, name):
            if name not in self.values:
                raise ValueError("InputWidgetNotDefined: " + name)
            return self.values[name]

    class _Secrets:
        def __init__(self, values):
            self.values = values
            self.asked = []

        def get(self, scope, key):
            self.asked.append((scope, key))
            if (scope, key) not in self.values:
                raise ValueError("Secret does not exist with scope: %s and key: %s" % (scope, key))
            return self.values[(scope, key)]

    def __init__(self, widgets=None, secrets=None):
        self.widgets = self._Widgets(widgets or {})
        self.secrets = self._Secrets(secrets or {})


class FakeProducer:
    def __init__(self, config, remaining=0, error=None):
        self.config = config
        self.remaining = remaining
        self.error = error
        self.messages = []
        self.purged = False

    def produce(self, topic, value, key, on_delivery, headers=None):
        self.messages.append((topic, key, value))
        self.headers = headers
        self._on_delivery = on_delivery

    def flush(self, timeout):
        if not self.remaining:
            self._on_delivery(self.error, None)
        return self.remaining

    def purge(self):
        self.purged = True

    def poll(self, timeout):
        return 0


class ProducerRecorder:
    def __init__(self, **behaviour):
        self.behaviour = behaviour
        self.producers = []

    def __call__(self, config):
        producer = FakeProducer(config, **self.behaviour)
        self.producers.append(producer)
        return producer


CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("BRICKWORK_")}


@mock.patch.dict(os.environ, CLEAN_ENV, clear=True)
class Parameters(unittest.TestCase):
    def test_argv_in_both_spellings_among_other_arguments(self):
        job = BrickworkJob.from_argv(["--input_path", "/Volumes/x"] + ARGV)
        self.assertEqual((job.workflow_id, job.step, job.token), ("order-1", "transform", "1.abc"))
        self.assertIsNone(job.run_id)

    def test_run_id_when_the_job_passes_it(self):
        job = BrickworkJob.from_argv(ARGV + ["--brickwork_run_id=1234"])
        self.assertEqual(job.event("SUCCESS")["run_id"], 1234)

    def test_widgets_in_a_notebook(self):
        dbutils = FakeDbutils(widgets={"brickwork_workflow_id": "order-2",
                                       "brickwork_step": "load", "brickwork_token": "1.def"})
        job = BrickworkJob.from_context(argv=[], dbutils=dbutils)
        self.assertEqual((job.workflow_id, job.step, job.token), ("order-2", "load", "1.def"))

    def test_traceparent_goes_on_the_event_as_a_header(self):
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        producers = ProducerRecorder()
        BrickworkJob.from_argv(ARGV + ["--brickwork_traceparent", traceparent],
                               kafka={"bootstrap.servers": "k:9092"},
                               producer_factory=producers).publish("SUCCESS")
        self.assertEqual(producers.producers[0].headers, [("traceparent", traceparent.encode())])
        producers = ProducerRecorder()
        BrickworkJob.from_argv(ARGV, kafka={"bootstrap.servers": "k:9092"},
                               producer_factory=producers).publish("SUCCESS")
        self.assertEqual(producers.producers[0].headers, [])

    def test_missing_parameter_names_it(self):
        with self.assertRaisesRegex(MissingParameter, "brickwork_token"):
            BrickworkJob.from_argv(ARGV[:3])

    def test_event_is_the_contract_shape(self):
        job = BrickworkJob.from_argv(ARGV)
        self.assertEqual(job.event("FAILED", {}, "x" * 20000),
                         {"type": "job_completed", "workflow_id": "order-1", "step": "transform",
                          "token": "1.abc", "state": "FAILED", "output": {},
                          "message": "x" * brickwork_job.MAX_MESSAGE_CHARS})
        with self.assertRaises(TypeError):
            job.event("SUCCESS", [1, 2])
        with self.assertRaises(ValueError):
            job.event("DONE")

    def test_nan_or_infinity_in_the_output_is_refused_naming_where(self):
        job = BrickworkJob.from_argv(ARGV)
        with self.assertRaisesRegex(ValueError, r"output\.stats\[1\] is nan.*NaN and Infinity"):
            job.event("SUCCESS", {"rows": 3, "stats": [0.5, float("nan")]})
        with self.assertRaisesRegex(ValueError, r"output\.ratio is -inf"):
            job.event("SUCCESS", {"ratio": float("-inf")})


@mock.patch.dict(os.environ, CLEAN_ENV, clear=True)
class KafkaSettings(unittest.TestCase):
    def test_secrets_first_then_environment(self):
        dbutils = FakeDbutils(secrets={
            ("kafka", "kafka-bootstrap-servers"): "broker.example:9093",
            ("kafka", "kafka-sasl-username"): "svc-brickwork",
            ("kafka", "kafka-sasl-password"): "s3cret",
        })
        os.environ.update({"BRICKWORK_KAFKA_BOOTSTRAP_SERVERS": "ignored:9092",
                           "BRICKWORK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                           "BRICKWORK_KAFKA_SASL_MECHANISM": "PLAIN",
                           "BRICKWORK_EVENTS_TOPIC": "acme.brickwork.events"})
        job = BrickworkJob.from_argv(ARGV, dbutils=dbutils, secret_scope="kafka")
        config = job.kafka_config()
        self.assertEqual(config["bootstrap.servers"], "broker.example:9093")
        self.assertEqual(config["security.protocol"], "SASL_SSL")
        self.assertEqual(config["sasl.mechanisms"], "PLAIN")
        self.assertEqual(config["sasl.username"], "svc-brickwork")
        self.assertEqual(config["sasl.password"], "s3cret")
        self.assertEqual(config["acks"], "all")
        # As the daemon and the CLI: keyed like the Java client (docs/OPERATIONS.md).
        self.assertEqual(config["partitioner"], "murmur2_random")
        self.assertEqual(job.events_topic(), "acme.brickwork.events")

    def test_extra_properties_and_explicit_settings_win(self):
        os.environ["BRICKWORK_KAFKA_PROPERTIES"] = json.dumps(
            {"ssl.ca.location": "/dbfs/ca.pem", "bootstrap.servers": "a:1"})
        job = BrickworkJob.from_argv(ARGV, kafka={"bootstrap.servers": "b:2"})
        config = job.kafka_config()
        self.assertEqual(config["ssl.ca.location"], "/dbfs/ca.pem")
        self.assertEqual(config["bootstrap.servers"], "b:2")

    def test_no_bootstrap_servers_is_an_error(self):
        with self.assertRaisesRegex(MissingParameter, "bootstrap"):
            BrickworkJob.from_argv(ARGV).kafka_config()


@mock.patch.dict(os.environ, dict(CLEAN_ENV, BRICKWORK_KAFKA_BOOTSTRAP_SERVERS="k:9092"),
                 clear=True)
class Reporting(unittest.TestCase):
    def test_success_publishes_the_output_keyed_by_workflow(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)
        with job.reporting() as report:
            report.output = {"rows": 42}
        ((topic, key, value),) = producers.producers[0].messages
        self.assertEqual((topic, key), ("brickwork.events", b"order-1"))
        self.assertEqual(json.loads(value)["state"], "SUCCESS")
        self.assertEqual(json.loads(value)["output"], {"rows": 42})

    def test_exception_publishes_failed_and_propagates(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)
        with self.assertRaises(KeyError):
            with job.reporting():
                {}["missing_column"]
        event = json.loads(producers.producers[0].messages[0][2])
        self.assertEqual(event["state"], "FAILED")
        self.assertEqual(event["message"], "KeyError: 'missing_column'")

    def test_decorator_uses_the_return_value(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)

        @job.completes
        def task():
            return {"tables": 2}

        self.assertEqual(task(), {"tables": 2})
        self.assertEqual(json.loads(producers.producers[0].messages[0][2])["output"],
                         {"tables": 2})

    def test_output_that_is_not_json_fails_the_step(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)
        with self.assertRaises(TypeError):
            with job.reporting() as report:
                report.output = {"when": object()}
        self.assertEqual(json.loads(producers.producers[0].messages[0][2])["state"], "FAILED")

    def test_output_with_nan_publishes_failed_naming_it(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)
        with self.assertRaisesRegex(ValueError, "output.mean is nan"):
            with job.reporting() as report:
                report.output = {"mean": float("nan")}
        ((_, _, value),) = producers.producers[0].messages
        event = json.loads(value, parse_constant=self.fail)  # strict, as the daemon parses
        self.assertEqual(event["state"], "FAILED")
        self.assertIn("output.mean is nan", event["message"])

    def test_publish_refuses_nan_before_producing(self):
        producers = ProducerRecorder()
        job = BrickworkJob.from_argv(ARGV, producer_factory=producers)
        with self.assertRaisesRegex(ValueError, "output.x is inf"):
            job.publish("SUCCESS", {"x": float("inf")})
        self.assertEqual(producers.producers, [])

    def test_undelivered_or_refused_event_raises(self):
        timed_out = ProducerRecorder(remaining=1)
        job = BrickworkJob.from_argv(ARGV, producer_factory=timed_out)
        with self.assertRaisesRegex(CompletionNotDelivered, "not delivered"):
            job.publish("SUCCESS")
        self.assertTrue(timed_out.producers[0].purged)
        refused = ProducerRecorder(error="TOPIC_AUTH")
        job = BrickworkJob.from_argv(ARGV, producer_factory=refused)
        with self.assertRaisesRegex(CompletionNotDelivered, "refused: TOPIC_AUTH"):
            job.publish("SUCCESS")
        self.assertFalse(refused.producers[0].purged)


@mock.patch.dict(os.environ, CLEAN_ENV, clear=True)
class RealProducer(unittest.TestCase):
    def test_flush_times_out_when_no_broker_answers(self):
        try:
            import confluent_kafka
        except ImportError:
            self.fail("confluent_kafka is missing: run scripts/install-deps.sh "
                      "(python3-confluent-kafka)")
        # A port that refuses connections: bound, never listened on.
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            producers = []

            def real_producer(config):
                producers.append(confluent_kafka.Producer(config))
                return producers[-1]

            job = BrickworkJob.from_argv(
                ARGV, kafka={"bootstrap.servers": "127.0.0.1:%d" % port, "log_level": 0},
                flush_timeout=1.0, producer_factory=real_producer)
            started = time.monotonic()
            with self.assertRaisesRegex(CompletionNotDelivered, "within 1.0s"):
                job.publish("SUCCESS", {"rows": 1})
            self.assertLess(time.monotonic() - started, 10)
            # Purged: nothing is left for librdkafka to deliver once a broker answers.
            self.assertEqual(len(producers[0]), 0)


if __name__ == "__main__":
    unittest.main()
