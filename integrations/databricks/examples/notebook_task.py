# Databricks notebook source
# MAGIC %md
# MAGIC # The last task of a brickwork job (notebook task)
# MAGIC
# MAGIC brickwork passes `brickwork_workflow_id`, `brickwork_step` and `brickwork_token`
# MAGIC as job parameters (or notebook parameters of a `submit_run` task); a notebook
# MAGIC reads both as widgets. The cell below wraps the task's work: it publishes
# MAGIC `job_completed` with `SUCCESS` and the output, or `FAILED` with the exception's
# MAGIC message, to the events topic, and waits until Kafka has it.
# MAGIC
# MAGIC Kafka settings come from the secret scope named by the `brickwork_secret_scope`
# MAGIC widget (keys `kafka-bootstrap-servers`, `kafka-sasl-username`,
# MAGIC `kafka-sasl-password`, ...; see `brickwork_job.py`).

# COMMAND ----------

# MAGIC %pip install confluent-kafka

# COMMAND ----------

dbutils.widgets.text("brickwork_workflow_id", "")
dbutils.widgets.text("brickwork_step", "")
dbutils.widgets.text("brickwork_token", "")
dbutils.widgets.text("brickwork_secret_scope", "brickwork")
dbutils.widgets.text("table", "main.sales.orders")

# COMMAND ----------

# The brickwork-job wheel as a library of the task (docs/OPERATIONS.md), or
# brickwork_job.py next to this notebook in the workspace (or a Git folder).
from brickwork_job import BrickworkJob

job = BrickworkJob.from_widgets(dbutils, secret_scope=dbutils.widgets.get("brickwork_secret_scope"))

with job.reporting() as report:
    table = dbutils.widgets.get("table")
    rows = spark.table(table).count()
    report.output = {"table": table, "rows": rows}

# COMMAND ----------

# The event is out; the notebook's exit value is what polling would read
# (runs/get-output) if the event had been lost.
import json

dbutils.notebook.exit(json.dumps(job.published["output"]))
