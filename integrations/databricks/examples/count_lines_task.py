"""A Python script task (or a wheel's entry point) that reports to brickwork.

Counts the lines of a file (on Databricks, e.g. a Unity Catalog volume path
/Volumes/main/raw/landing/orders.csv) and publishes the count as the step's
output. The job passes, in the task's parameters:

    ["--input_path", "{{job.parameters.input_path}}",
     "--brickwork_workflow_id", "{{job.parameters.brickwork_workflow_id}}",
     "--brickwork_step", "{{job.parameters.brickwork_step}}",
     "--brickwork_token", "{{job.parameters.brickwork_token}}"]

A missing file raises FileNotFoundError: the step fails with its message.
Kafka settings: see brickwork_job.py (secrets of BRICKWORK_SECRET_SCOPE or
BRICKWORK_KAFKA_* environment variables).
"""
import argparse
import os
import sys

# Run from a checkout: brickwork_job.py sits one folder up. On Databricks,
# install it with the wheel or put it next to this file in the workspace.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from brickwork_job import BrickworkJob  # noqa: E402


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser()
    parser.add_argument("--input_path", required=True)
    args, _ = parser.parse_known_args(argv)  # the brickwork_* ones are the helper's

    job = BrickworkJob.from_argv(argv)
    with job.reporting() as report:
        report.output = {"path": args.input_path, "lines": count_lines(args.input_path)}
    return 0


if __name__ == "__main__":
    sys.exit(main())
