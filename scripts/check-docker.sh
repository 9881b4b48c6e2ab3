#!/usr/bin/env bash
# Checks docker/ without a Docker engine: every file that compose.yaml (and
# the test override) mounts, builds from or uses as a secret exists (or is made
# by docker/make-secrets.sh), every depends_on / network_mode names a service,
# service_healthy waits only on services with a health check, and the
# Dockerfile is Debian 12 based, runs as a numeric non-root user, has a
# HEALTHCHECK and copies only what .dockerignore lets in. With the compose
# plugin present, `docker compose config` validates the file as well.
set -euo pipefail
cd "$(dirname "$0")/.."
bash -n docker/healthcheck.sh docker/make-secrets.sh

if docker compose version >/dev/null 2>&1; then
  docker compose -f docker/compose.yaml config -q
  docker compose -f docker/compose.yaml -f docker/compose.test.yaml config -q
  echo "check-docker: docker compose config accepts docker/compose.yaml (and the test override)"
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f docker/compose.yaml config -q
  docker-compose -f docker/compose.yaml -f docker/compose.test.yaml config -q
  echo "check-docker: docker-compose config accepts docker/compose.yaml (and the test override)"
fi

# Debian's interpreter, where python3-yaml is installed (scripts/install-deps.sh).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" - "$@" <<'EOF'
import fnmatch
import os
import re
import sys

import yaml

problems = []


def problem(where, text):
    problems.append("%s: %s" % (where, text))


def dockerfile_healthcheck(path):
    """Whether a Dockerfile's final image has a HEALTHCHECK other than NONE."""
    found = False  # the final stage inherits its base stage's HEALTHCHECK
    for line in open(path, encoding="utf-8"):
        if line.startswith("HEALTHCHECK"):
            found = "NONE" not in line
    return found


def dockerignore_allows(root, rel):
    """Last matching .dockerignore rule wins; '!' lets a path back in."""
    path = os.path.join(root, ".dockerignore")
    if not os.path.exists(path):
        return True
    allowed = True
    for raw in open(path, encoding="utf-8"):
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.rstrip("/")
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(rel, pattern):
            allowed = negate
    return allowed


def check_dockerfile(root, rel):
    path = os.path.join(root, rel)
    text = open(path, encoding="utf-8").read()
    # Join continuation lines, drop comments.
    lines = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").rstrip() + " "
        if not line.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    args = {}
    stages = set()
    users = []
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip()
        elif word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
            m = re.search(r"\bAS\s+(\S+)", rest, re.IGNORECASE)
            if m:
                stages.add(m.group(1))
            if image not in stages and not re.match(r"(debian:(12|bookworm)|brickwork:)", image):
                problem(rel, "FROM %s is not Debian 12 (bookworm)" % image)
        elif word == "USER":
            users.append(rest.strip())
        elif word == "COPY":
            tokens = rest.split()
            if any(t.startswith("--from") for t in tokens):
                continue
            sources = [t for t in tokens if not t.startswith("--")][:-1]
            for src in sources:
                if src == ".":
                    continue
                if not os.path.exists(os.path.join(root, src)) and not src.startswith("build/"):
                    problem(rel, "COPY %s: no such file in the build context" % src)
                elif not dockerignore_allows(root, src):
                    problem(rel, "COPY %s: excluded by .dockerignore" % src)
    if "HEALTHCHECK" not in text:
        problem(rel, "no HEALTHCHECK")
    if not users:
        problem(rel, "no USER: the image would run as root")
    for user in users:
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            problem(rel, "USER %s: use a numeric, non-root uid" % user)


def merged(base, override):
    """An override file over its base, as `docker compose -f a -f b` merges
    mappings (lists and scalars are replaced: enough for these checks)."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base[key], value) if key in base else value
        return out
    return override


def check_compose(root, rels, secrets_made):
    rel = " + ".join(rels)
    base = os.path.dirname(os.path.join(root, rels[0]))
    doc = {}
    for one in rels:
        doc = merged(doc, yaml.safe_load(open(os.path.join(root, one), encoding="utf-8")))
    services = doc.get("services") or {}
    top_secrets = doc.get("secrets") or {}
    for name, secret in top_secrets.items():
        src = (secret or {}).get("file")
        if src is None:
            continue
        full = os.path.normpath(os.path.join(base, src))
        made = os.path.basename(full) in secrets_made and os.path.basename(os.path.dirname(full)) == "secrets"
        if not os.path.exists(full) and not made:
            problem(rel, "secret %s: %s does not exist (nor does make-secrets.sh make it)" % (name, src))
    for name, service in services.items():
        where = "%s: service %s" % (rel, name)
        healthy_needed = []
        deps = service.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, how in deps.items():
            if dep not in services:
                problem(where, "depends_on names no service: %s" % dep)
                continue
            condition = (how or {}).get("condition", "service_started")
            if condition not in ("service_started", "service_healthy",
                                 "service_completed_successfully"):
                problem(where, "unknown depends_on condition %s" % condition)
            if condition == "service_healthy":
                healthy_needed.append(dep)
        for dep in healthy_needed:
            other = services[dep]
            check = other.get("healthcheck")
            if check is not None and check.get("disable"):
                problem(where, "waits for %s to be healthy, whose health check is disabled" % dep)
            elif check is None:
                build = other.get("build")
                dockerfile = None
                if isinstance(build, dict):
                    dockerfile = os.path.join(base, build.get("context", "."),
                                              build.get("dockerfile", "Dockerfile"))
                if not dockerfile or not dockerfile_healthcheck(dockerfile):
                    problem(where, "waits for %s to be healthy, which has no health check" % dep)
        mode = service.get("network_mode", "")
        if mode.startswith("service:") and mode[8:] not in services:
            problem(where, "network_mode names no service: %s" % mode[8:])
        for secret in service.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in top_secrets:
                problem(where, "secret %s is not defined at the top level" % secret_name)
        for volume in service.get("volumes") or []:
            src = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if src.startswith((".", "/")) and not os.path.exists(os.path.join(base, src)):
                problem(where, "mounts %s, which does not exist" % src)
        build = service.get("build")
        if isinstance(build, dict):
            context = os.path.normpath(os.path.join(base, build.get("context", ".")))
            dockerfile = build.get("dockerfile", "Dockerfile")
            if not os.path.exists(os.path.join(context, dockerfile)):
                problem(where, "builds from %s, which does not exist" % dockerfile)
        if "image" not in service and "build" not in service:
            problem(where, "neither image nor build")
    return len(services)


root = os.getcwd()
secrets_made = set(re.findall(r"^write (\w+)", open("docker/make-secrets.sh").read(), re.M))
for dockerfile in ("docker/Dockerfile",):
    check_dockerfile(root, dockerfile)
counted = []
for files in (["docker/compose.yaml"], ["docker/compose.yaml", "docker/compose.test.yaml"]):
    if all(os.path.exists(f) for f in files):
        counted.append("%s (%d services)" % (" + ".join(files),
                                              check_compose(root, files, secrets_made)))
yaml.safe_load(open("docker/brickwork.yaml", encoding="utf-8"))
if problems:
    for p in problems:
        print("check-docker: " + p, file=sys.stderr)
    sys.exit(1)
print("check-docker: docker/Dockerfile and " + ", ".join(counted) + " are consistent")
EOF
