"""docker-compose.yml stays runnable without a Docker engine: services, start order, Redis
durability, queue coverage, and commands that name modules, names and scripts that really exist.

Modules are checked with `ast`, never imported, so the test needs no broker and stays fast.
"""

from __future__ import annotations

import ast
import itertools
import shlex
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
QUEUES = frozenset({"transcribe", "asr-local", "analyze", "default", "webhooks", "maintenance"})
NETWORK_QUEUES = frozenset({"transcribe", "analyze", "webhooks"})  # ARCHITECTURE §5: threads
CPU_QUEUES = frozenset({"asr-local"})  # ARCHITECTURE §5: prefork, one slot per core
THREAD_POOLS = frozenset({"threads", "gevent", "eventlet"})
MIN_NETWORK_CONCURRENCY = 10  # "tens of slots per process"
CONDITIONS = frozenset({"service_started", "service_healthy", "service_completed_successfully"})
DATABASE_SCHEME = "postgresql+psycopg"
DATABASE_DRIVER = "psycopg"
URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL")
IMAGE_EXTRAS = ("local",)  # the Dockerfile installs `.[local]`
PROGRAM_DISTRIBUTIONS = {"celery": "celery", "gunicorn": "gunicorn", "flower": "flower"}

Service = dict[str, Any]
Compose = dict[str, Any]


# --- reading the compose file ------------------------------------------------------------


def load_compose(path: Path) -> Compose:
    with path.open(encoding="utf-8") as file:
        data: Compose = yaml.safe_load(file)
    return data


def services(compose: Compose) -> dict[str, Service]:
    found: dict[str, Service] = compose.get("services") or {}
    return found


def app_services(compose: Compose) -> dict[str, Service]:
    """Services built from this repository (the ones merging the `x-app` anchor)."""
    return {name: svc for name, svc in services(compose).items() if "build" in svc}


def argv(service: Service) -> list[str]:
    """The command as the container gets it: Compose splits a string shell-style."""
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(args: list[str], *names: str) -> str | None:
    """The value of the first of `names`, given as `--name value` or `--name=value`."""
    for arg, following in zip(args, [*args[1:], None], strict=True):
        for name in names:
            if arg == name:
                return following
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def depends_on(service: Service) -> dict[str, str]:
    """Dependency name → condition, for both the list and the mapping form."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def environment(service: Service) -> dict[str, str | None]:
    """Variable → value; None where Compose takes the value from the host shell."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {key: None if value is None else str(value) for key, value in env.items()}
    pairs = (str(item).partition("=") for item in env)
    return {key: value if sep else None for key, sep, value in pairs}


def workers(compose: Compose) -> dict[str, list[str]]:
    """argv of every service that runs a Celery worker."""
    commands = {name: argv(svc) for name, svc in services(compose).items()}
    return {
        name: args for name, args in commands.items() if args[:1] == ["celery"] and "worker" in args
    }


def queues_of(args: list[str]) -> set[str]:
    return {queue for queue in (option(args, "-Q", "--queues") or "").split(",") if queue}


# --- reading the repository (ast and toml, no imports) -------------------------------------


def module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    candidates = (base.parent / f"{base.name}.py", base / "__init__.py")
    return next((path for path in candidates if path.is_file()), None)


def top_level_names(path: Path) -> set[str]:
    """Names a module binds at top level: defs, classes, assignments and imports."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def console_scripts(root: Path) -> dict[str, str]:
    scripts: dict[str, str] = pyproject(root).get("project", {}).get("scripts", {})
    return scripts


def image_distributions(root: Path) -> set[str]:
    """Distributions the image installs: core dependencies plus IMAGE_EXTRAS."""
    project = pyproject(root).get("project", {})
    extras = project.get("optional-dependencies", {})
    specs = [
        *project.get("dependencies", []),
        *(s for e in IMAGE_EXTRAS for s in extras.get(e, [])),
    ]
    return {canonicalize_name(Requirement(spec).name) for spec in specs}


def reference_problem(root: Path, ref: str, *, service: str) -> str | None:
    """None if `module:name` or `module:factory()` names a top-level name of a repo module."""
    module, colon, name = ref.partition(":")
    name = name.split("(", 1)[0].strip()
    if not (colon and module and name.isidentifier()):
        return f"{service}: {ref!r} is not module:name"
    path = module_file(root, module)
    if path is None:
        return f"{service}: module {module!r} not found in the repository"
    if name not in top_level_names(path):
        return f"{service}: {path.relative_to(root)} defines no top-level {name!r}"
    return None


def app_reference(root: Path, args: list[str]) -> str | None:
    """The `module:name` an app command loads: celery -A, gunicorn's app, or a console script."""
    program = args[0] if args else ""
    if program == "celery":
        return option(args, "-A", "--app")
    if program == "gunicorn":
        return args[-1]
    return console_scripts(root).get(program)


# --- checks: each returns a list of problems, empty when all is well -----------------------


def image_problems(compose: Compose) -> list[str]:
    problems = ["compose file has a `version:` key"] if "version" in compose else []
    problems += [
        f"{name}: neither image nor build"
        for name, svc in services(compose).items()
        if not {"image", "build"} & svc.keys()
    ]
    return problems


def redis_problems(compose: Compose) -> list[str]:
    if "redis" not in services(compose):
        return ["no redis service"]
    service = services(compose)["redis"]
    args = argv(service)
    options = {flag[2:]: value for flag, value in itertools.pairwise(args) if flag.startswith("--")}
    wanted = {
        "appendonly": {"yes"},
        "appendfsync": {"everysec", "always"},
        "maxmemory-policy": {"noeviction"},
    }
    problems = [
        f"redis: --{key} is {options.get(key)!r}, want one of {sorted(ok)}"
        for key, ok in wanted.items()
        if options.get(key) not in ok
    ]
    if not any(str(volume).endswith(":/data") for volume in service.get("volumes", [])):
        problems.append("redis: /data (the AOF) is not on a volume")
    return problems


def dependency_problems(compose: Compose) -> list[str]:
    known = services(compose)
    problems = []
    for name, service in known.items():
        for dep, condition in depends_on(service).items():
            if dep not in known:
                problems.append(f"{name}: depends on unknown service {dep!r}")
            elif condition not in CONDITIONS:
                problems.append(f"{name}: unknown condition {condition!r} on {dep}")
            elif condition == "service_healthy" and "healthcheck" not in known[dep]:
                problems.append(
                    f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck"
                )
    try:
        tuple(
            TopologicalSorter({name: depends_on(svc) for name, svc in known.items()}).static_order()
        )
    except CycleError as exc:
        problems.append(f"depends_on cycle: {exc.args[1]}")
    return problems


def command_problems(compose: Compose, root: Path) -> list[str]:
    problems = []
    for name, service in app_services(compose).items():
        args = argv(service)
        ref = app_reference(root, args)
        if ref is None:
            problems.append(
                f"{name}: {args[:1]} is not celery -A, gunicorn or a pyproject.toml script"
            )
        elif problem := reference_problem(root, ref, service=name):
            problems.append(problem)
    return problems


def program_problems(compose: Compose, root: Path) -> list[str]:
    """Every program an app command runs comes from a distribution the image installs."""
    used = set()
    for service in app_services(compose).values():
        args = argv(service)
        used.update(args[:1] + (["flower"] if args[:1] == ["celery"] and "flower" in args else []))
    wanted = {PROGRAM_DISTRIBUTIONS[program] for program in used & PROGRAM_DISTRIBUTIONS.keys()}
    missing = wanted - image_distributions(root)
    return [f"pyproject.toml does not depend on {dist!r}" for dist in sorted(missing)]


def queue_problems(compose: Compose) -> list[str]:
    consumed = {name: queues_of(args) for name, args in workers(compose).items()}
    problems = [
        f"{name}: worker without --queues" for name, queues in consumed.items() if not queues
    ]
    problems += [
        f"{name}: unknown queues {sorted(queues - QUEUES)}"
        for name, queues in consumed.items()
        if queues - QUEUES
    ]
    if missing := QUEUES - set().union(*consumed.values()):
        problems.append(f"no worker consumes {sorted(missing)}")
    return problems


def pool_problems(compose: Compose) -> list[str]:
    problems = []
    for name, args in workers(compose).items():
        pool = option(args, "-P", "--pool") or "prefork"
        concurrency = int(option(args, "-c", "--concurrency") or 0)
        if queues_of(args) & NETWORK_QUEUES and (
            pool not in THREAD_POOLS or concurrency < MIN_NETWORK_CONCURRENCY
        ):
            problems.append(
                f"{name}: network-bound queues on --pool {pool} --concurrency {concurrency}"
            )
        if queues_of(args) & CPU_QUEUES and pool not in {"prefork", "solo"}:
            problems.append(f"{name}: CPU-bound queues on --pool {pool}")
    return problems


def database_url_problems(compose: Compose) -> list[str]:
    urls = {
        name: environment(svc).get("DATABASE_URL") for name, svc in app_services(compose).items()
    }
    return [
        f"{name}: DATABASE_URL {url!r} does not use {DATABASE_SCHEME}"
        for name, url in urls.items()
        if urlsplit(url or "").scheme != DATABASE_SCHEME
    ]


def database_driver_problems(root: Path) -> list[str]:
    if DATABASE_DRIVER in image_distributions(root):
        return []
    return [
        f"pyproject.toml does not depend on {DATABASE_DRIVER!r}, the driver of {DATABASE_SCHEME}"
    ]


def url_host_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in app_services(compose).items():
        env = environment(service)
        for variable in URL_VARIABLES:
            host = urlsplit(env.get(variable) or "").hostname
            if host not in services(compose):
                problems.append(f"{name}: {variable} points at {host!r}, not a service")
    return problems


def created_buckets(compose: Compose) -> set[str]:
    """Buckets named by `mc mb ALIAS/BUCKET` commands."""
    commands = [argv(service) for service in services(compose).values()]
    return {
        arg.rsplit("/", 1)[-1] for args in commands if "mb" in args for arg in args if "/" in arg
    }


def bucket_problems(compose: Compose) -> list[str]:
    """Every s3:// bucket the app uses is made by a one-shot `mc mb` service."""
    urls = {environment(svc).get("STORAGE_URL") or "" for svc in app_services(compose).values()}
    buckets = {urlsplit(url).hostname or "" for url in urls if url.startswith("s3://")}
    missing = buckets - created_buckets(compose)
    return [f"no service creates bucket {bucket!r}" for bucket in sorted(missing)]


def all_problems(compose: Compose, root: Path) -> list[str]:
    return [
        *image_problems(compose),
        *redis_problems(compose),
        *dependency_problems(compose),
        *command_problems(compose, root),
        *program_problems(compose, root),
        *queue_problems(compose),
        *pool_problems(compose),
        *database_url_problems(compose),
        *database_driver_problems(root),
        *url_host_problems(compose),
        *bucket_problems(compose),
    ]


# --- the repository's compose file -------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose(ROOT / "docker-compose.yml")


def test_every_service_has_an_image_or_build(compose: Compose) -> None:
    assert image_problems(compose) == []


def test_redis_keeps_aof_on_a_volume_and_never_evicts(compose: Compose) -> None:
    assert redis_problems(compose) == []


def test_depends_on_names_existing_services_without_cycles(compose: Compose) -> None:
    assert dependency_problems(compose) == []


def test_app_commands_name_modules_and_names_that_exist(compose: Compose) -> None:
    assert command_problems(compose, ROOT) == []


def test_programs_run_by_app_services_are_dependencies(compose: Compose) -> None:
    assert program_problems(compose, ROOT) == []


def test_workers_consume_exactly_the_six_queues(compose: Compose) -> None:
    assert queue_problems(compose) == []


def test_network_queues_run_on_threads_and_cpu_queues_on_prefork(compose: Compose) -> None:
    assert pool_problems(compose) == []


def test_database_url_uses_the_psycopg_driver(compose: Compose) -> None:
    assert database_url_problems(compose) == []


def test_project_depends_on_the_database_driver() -> None:
    assert database_driver_problems(ROOT) == []


def test_service_urls_point_at_compose_services(compose: Compose) -> None:
    assert url_host_problems(compose) == []


def test_storage_bucket_is_created(compose: Compose) -> None:
    assert bucket_problems(compose) == []


# --- the checkers themselves, on a tiny repository of our own -----------------------------

FIXTURE_COMPOSE = """
x-app: &app
  build: .
  environment:
    DATABASE_URL: postgresql+psycopg://u:p@db:5432/d
    REDIS_URL: redis://redis:6379/0
    S3_ENDPOINT_URL: http://s3:9000
    STORAGE_URL: s3://blobs
services:
  redis:
    image: redis:7
    command: redis-server --appendonly yes --appendfsync everysec --maxmemory-policy noeviction
    volumes: [redis-data:/data]
    healthcheck: {test: [CMD, redis-cli, ping]}
  db: {image: postgres:16, healthcheck: {test: [CMD, pg_isready]}}
  s3: {image: minio/minio}
  s3-init: {image: minio/mc, command: mb --ignore-existing s3/blobs, depends_on: [s3]}
  migrate:
    <<: *app
    command: tool db upgrade
    depends_on: {db: {condition: service_healthy}}
  web:
    <<: *app
    command: gunicorn --bind 0.0.0.0:8000 "web:create_app()"
    depends_on:
      migrate: {condition: service_completed_successfully}
      redis: {condition: service_healthy}
  io:
    <<: *app
    command: celery -A jobs.app:app worker --queues=transcribe,analyze,webhooks,maintenance --pool threads -c 20
    depends_on: [redis]
  cpu:
    <<: *app
    command: [celery, --app, "jobs.app:app", worker, -Q, "asr-local,default", -P, prefork, -c, "2"]
"""

FIXTURE_FILES = {
    "pyproject.toml": (
        '[project]\nname = "demo"\ndependencies = ["psycopg[binary]>=3.2", "gunicorn"]\n'
        '[project.optional-dependencies]\nlocal = ["Celery>=5.4"]\n'
        '[project.scripts]\ntool = "web.cli:cli"\n'
    ),
    "jobs/app.py": "from celery import Celery\n\napp: Celery = Celery(__name__)\n",
    "web/__init__.py": "def create_app():\n    return None\n",
    "web/cli.py": "import click\n\n\n@click.group()\ndef cli():\n    pass\n",
}


def make_fixture(root: Path, *, edit: tuple[str, str, str] | None = None) -> Compose:
    """Write the fixture repository; `edit` = (file, old, new) breaks one thing first."""
    files = {"docker-compose.yml": FIXTURE_COMPOSE, **FIXTURE_FILES}
    if edit is not None:
        name, old, new = edit
        assert old in files[name], f"fixture edit does not apply: {old!r}"
        files[name] = files[name].replace(old, new, 1)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return load_compose(root / "docker-compose.yml")


def test_checkers_pass_on_a_consistent_fixture(tmp_path: Path) -> None:
    compose = make_fixture(tmp_path)

    assert all_problems(compose, tmp_path) == []
    assert environment(services(compose)["io"])["REDIS_URL"] == "redis://redis:6379/0"  # `<<:`


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("docker-compose.yml", "image: minio/minio", "restart: always"),
            "s3: neither image nor build",
        ),
        (
            ("docker-compose.yml", "--appendonly yes", "--appendonly no"),
            "redis: --appendonly is 'no'",
        ),
        (("docker-compose.yml", "noeviction", "allkeys-lru"), "redis: --maxmemory-policy"),
        (
            ("docker-compose.yml", "[redis-data:/data]", "[]"),
            "redis: /data (the AOF) is not on a volume",
        ),
        (
            ("docker-compose.yml", "depends_on: [redis]", "depends_on: [rabbit]"),
            "io: depends on unknown service 'rabbit'",
        ),
        (
            (
                "docker-compose.yml",
                "db: {image: postgres:16, healthcheck: {test: [CMD, pg_isready]}}",
                "db: {image: postgres:16}",
            ),
            "migrate: waits for db to be healthy",
        ),
        (("docker-compose.yml", "depends_on: [s3]", "depends_on: [s3-init]"), "depends_on cycle"),
        (
            (
                "docker-compose.yml",
                "jobs.app:app worker --queues",
                "jobs.app:application worker --queues",
            ),
            "io: jobs/app.py defines no top-level 'application'",
        ),
        (
            ("docker-compose.yml", "jobs.app:app worker --queues", "tasks.app:app worker --queues"),
            "io: module 'tasks.app' not found",
        ),
        (
            ("docker-compose.yml", "celery -A jobs.app:app", "celery -A jobs.app"),
            "io: 'jobs.app' is not module:name",
        ),
        (
            ("docker-compose.yml", '"web:create_app()"', '"web:make_app()"'),
            "web: web/__init__.py defines no top-level 'make_app'",
        ),
        (
            ("docker-compose.yml", "tool db upgrade", "other db upgrade"),
            "migrate: ['other'] is not celery -A",
        ),
        (
            ("pyproject.toml", 'tool = "web.cli:cli"', 'tool = "web.admin:cli"'),
            "migrate: module 'web.admin' not found",
        ),
        (
            ("web/cli.py", "def cli():", "def main():"),
            "migrate: web/cli.py defines no top-level 'cli'",
        ),
        (
            ("pyproject.toml", '"gunicorn"', '"flask"'),
            "pyproject.toml does not depend on 'gunicorn'",
        ),
        (
            ("docker-compose.yml", "transcribe,analyze,webhooks", "transcribe,analyze,webhook"),
            "io: unknown queues ['webhook']",
        ),
        (
            ("docker-compose.yml", '"asr-local,default"', '"asr-local"'),
            "no worker consumes ['default']",
        ),
        (
            ("docker-compose.yml", "--pool threads -c 20", "--pool prefork -c 20"),
            "io: network-bound queues on --pool prefork",
        ),
        (
            ("docker-compose.yml", "--pool threads -c 20", "--pool threads -c 2"),
            "io: network-bound queues on --pool threads --concurrency 2",
        ),
        (
            ("docker-compose.yml", "-P, prefork", "-P, threads"),
            "cpu: CPU-bound queues on --pool threads",
        ),
        (
            ("docker-compose.yml", "postgresql+psycopg://", "postgresql://"),
            "does not use postgresql+psycopg",
        ),
        (
            ("pyproject.toml", '"psycopg[binary]>=3.2"', '"psycopg2-binary"'),
            "does not depend on 'psycopg'",
        ),
        (
            ("docker-compose.yml", "redis://redis:6379", "redis://localhost:6379"),
            "REDIS_URL points at 'localhost'",
        ),
        (("docker-compose.yml", "s3://blobs", "s3://other"), "no service creates bucket 'other'"),
    ],
)
def test_checkers_report_each_breakage(
    tmp_path: Path, edit: tuple[str, str, str], expected: str
) -> None:
    compose = make_fixture(tmp_path, edit=edit)

    problems = all_problems(compose, tmp_path)

    assert any(expected in problem for problem in problems), problems


def test_app_services_log_json_and_keep_metrics_on_a_tmpfs(compose: Compose) -> None:
    """docs/operations.md: JSON logs, a multiprocess folder that starts empty with its container,
    and every worker serving its metrics on a port of its own."""
    for name, service in app_services(compose).items():
        env = environment(service)
        assert env.get("LOG_FORMAT") == "json", name
        assert env.get("PROMETHEUS_MULTIPROC_DIR") in (service.get("tmpfs") or []), name
    for name in workers(compose):
        port = environment(services(compose)[name]).get("WORKER_METRICS_PORT")
        assert port is not None and int(port) > 0, name
