"""The ``fednet`` command line: flags, FEDNET_* variables, errors and exit codes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fednet import cli
from fednet.config import RunConfig
from fednet.settings import ServerSettings
from fednet.fields import check_table
from fednet.server.app import create_app


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test without FEDNET_* variables from the outer environment."""
    for name in list(os.environ):
        if name.startswith("FEDNET_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def quiet_main(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return ``cli.main`` that leaves the test process's logging alone."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)
    return cli.main


def _parse(*argv: str) -> Any:
    return cli.build_parser().parse_args(list(argv))


def _fednet(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    return subprocess.run(
        [sys.executable, "-m", "fednet", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )


# -- parsing and the environment ------------------------------------------------


def test_server_defaults_follow_the_contract() -> None:
    """`fednet server` binds loopback:5000 with state in ./state, no tokens."""
    args = _parse("server")
    assert (args.host, args.port, args.state_dir) == ("127.0.0.1", 5000, Path("state"))
    assert args.join_token is None and args.admin_token is None


def test_server_flags_come_from_fednet_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FEDNET_PORT, FEDNET_STATE_DIR and the tokens replace the server defaults."""
    monkeypatch.setenv("FEDNET_PORT", "6123")
    monkeypatch.setenv("FEDNET_HOST", "0.0.0.0")
    monkeypatch.setenv("FEDNET_STATE_DIR", "/srv/fednet")
    monkeypatch.setenv("FEDNET_JOIN_TOKEN", "join-me")
    monkeypatch.setenv("FEDNET_ADMIN_TOKEN", "admin-me")
    monkeypatch.setenv("FEDNET_LOG_FORMAT", "json")

    args = _parse("server")

    assert (args.host, args.port) == ("0.0.0.0", 6123)
    assert args.state_dir == Path("/srv/fednet")
    assert (args.join_token, args.admin_token, args.log_format) == (
        "join-me",
        "admin-me",
        "json",
    )


def test_client_flags_come_from_fednet_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every client flag of the contract can be set by its FEDNET_* variable."""
    env = {
        "FEDNET_SERVER": "ws://coordinator:5000/ws",
        "FEDNET_NAME": "hospital-a",
        "FEDNET_DATA": "patients.csv",
        "FEDNET_LABEL_COLUMN": "diagnosis",
        "FEDNET_DATASET": "digits",
        "FEDNET_PARTITION": "2/5",
        "FEDNET_ALPHA": "0.5",
        "FEDNET_SEED": "7",
        "FEDNET_JOIN_TOKEN": "join-me",
        "FEDNET_CLIENT_PORT": "5099",
        "FEDNET_BACKOFF_MAX_S": "2.5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    args = _parse("client")

    assert args.server == "ws://coordinator:5000/ws" and args.name == "hospital-a"
    assert (args.data, args.label_column) == (Path("patients.csv"), "diagnosis")
    assert (args.dataset, args.partition, args.alpha) == ("digits", (2, 5), 0.5)
    assert (args.seed, args.join_token, args.client_port) == (7, "join-me", 5099)
    assert args.backoff_max_s == 2.5


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag on the command line beats the FEDNET_* variable of the same name."""
    monkeypatch.setenv("FEDNET_PORT", "6123")
    monkeypatch.setenv("FEDNET_PARTITION", "2/5")
    monkeypatch.setenv("FEDNET_RUN_ROUNDS", "7")

    assert _parse("server", "--port", "7000").port == 7000
    assert _parse("client", "--partition", "3/4").partition == (3, 4)
    assert _parse("run", "--rounds", "4").rounds == 4
    assert _parse("run").rounds == 7


def test_run_flags_cover_every_run_config_field() -> None:
    """`fednet run` has a flag per RunConfig field, defaulting to RunConfig's."""
    args = _parse(
        "run", "--task", "csv", "--learning-rate", "0.05", "--min-clients", "3"
    )
    assert (args.task, args.learning_rate, args.min_clients) == ("csv", 0.05, 3)
    assert (args.rounds, args.model, args.strategy) == (10, "logreg", "fedavg")


def test_run_flag_table_names_every_run_config_field() -> None:
    """The import-time check of the flag converters names a field left out."""
    check_table(RunConfig, cli.RUN_FLAG_TYPES)
    partial = {k: v for k, v in cli.RUN_FLAG_TYPES.items() if k != "seed"}
    with pytest.raises(TypeError, match=r"without a converter \['seed'\]"):
        check_table(RunConfig, partial)


def test_run_flags_convert_by_field_type() -> None:
    """Integer and float RunConfig flags come back as int and float."""
    args = _parse("run", "--seed", "3", "--round-timeout-s", "5")
    assert (args.seed, args.round_timeout_s) == (3, 5.0)
    assert isinstance(args.round_timeout_s, float)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["server", "--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["client", "--partition", "two"], "expected i/n such as 2/5"),
        (["client", "--alpha", "lots"], "argument --alpha: invalid float value"),
        (["run", "--rounds", "many"], "argument --rounds: invalid int value"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_flag_values_exit_2_with_the_reason(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed flag value stops parsing with exit code 2 and says why."""
    with pytest.raises(SystemExit) as exit_info:
        _parse(*argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("FEDNET_CLIENT_PORT", "abc", "FEDNET_CLIENT_PORT='abc': invalid int value"),
        ("FEDNET_PARTITION", "2-of-5", "FEDNET_PARTITION='2-of-5': expected i/n"),
        ("FEDNET_ALPHA", "high", "FEDNET_ALPHA='high'"),
    ],
)
def test_bad_environment_values_exit_2_naming_the_variable(
    name: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A malformed FEDNET_* value exits 2 with the variable's name and value."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        _parse("client", "--dataset", "digits")
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_a_variable_of_another_subcommand_does_not_stop_this_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FEDNET_ROUNDS (a `fednet demo` flag) cannot break `fednet client`."""
    monkeypatch.setenv("FEDNET_ROUNDS", "ten")

    args = _parse("client", "--dataset", "digits")

    assert args.dataset == "digits"


# -- settings validation and client data ---------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "digits", "--partition", "4/3"], "partition: must be i/n"),
        (["--dataset", "mnist"], "dataset: must be one of digits, breast_cancer"),
        (["--data", "x.csv"], "label_column: --label-column is required"),
        ([], "data: give exactly one of --data FILE or --dataset NAME"),
        (["--dataset", "digits", "--server", "http://x:5"], "server: must be a ws://"),
    ],
)
def test_invalid_client_settings_exit_2_with_one_line_per_field(
    argv: list[str], expected: str, quiet_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Settings that cannot work are refused before connecting, exit code 2."""
    code = quiet_main(["client", *argv])
    assert code == 2
    assert f"fednet client: {expected}" in capsys.readouterr().err


def test_invalid_run_config_exits_2_before_contacting_a_server(
    quiet_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fednet run --rounds 0` is refused locally with the field's reason."""
    code = quiet_main(["run", "--server", "http://127.0.0.1:9", "--rounds", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fednet run: rounds: must be between 1 and 10000, got 0" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "a,b,y\n" + "1,2,yes\n" * 10 + "3,x,no\n",
            "line 12, column 'b': non-numeric value 'x'",
        ),
        ("a,b,y\n1,2,yes\n3,inf,no\n4,5,yes\n", "line 3, column 'b': non-finite"),
        ("a,b,y\n1,2,yes\n3,4\n", "line 3: 2 fields, expected 3"),
        ("a,b,label\n1,2,yes\n3,4,no\n", "no label column 'y'"),
    ],
)
def test_client_with_a_bad_csv_exits_2_naming_file_line_and_column(
    content: str,
    expected: str,
    tmp_path: Path,
    quiet_main: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A CSV the client cannot use stops it with exit 2 and where the problem is."""
    path = tmp_path / "site.csv"
    path.write_text(content)
    code = quiet_main(
        [
            "client",
            "--data",
            str(path),
            "--label-column",
            "y",
            "--server",
            "ws://127.0.0.1:9/ws",
            "--max-retries",
            "0",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fednet client: error: {path}: ") and expected in err


def test_client_process_with_a_missing_csv_exits_2(tmp_path: Path) -> None:
    """`python -m fednet client --data missing.csv` exits 2 naming the file."""
    missing = tmp_path / "missing.csv"
    done = _fednet(
        "client",
        "--data",
        str(missing),
        "--label-column",
        "y",
        "--server",
        "ws://127.0.0.1:9/ws",
        "--max-retries",
        "0",
    )
    assert done.returncode == 2, done.stderr
    assert f"fednet client: error: {missing}: no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_client_data_can_come_from_the_environment(tmp_path: Path) -> None:
    """FEDNET_DATA and FEDNET_LABEL_COLUMN alone configure a client's data."""
    path = tmp_path / "site.csv"
    path.write_text("a,b,y\n" + "1,2,yes\n" * 10 + "3,x,no\n")
    done = _fednet(
        "client",
        "--server",
        "ws://127.0.0.1:9/ws",
        env={
            "FEDNET_DATA": str(path),
            "FEDNET_LABEL_COLUMN": "y",
            "FEDNET_MAX_RETRIES": "0",
        },
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}: line 12, column 'b': non-numeric value 'x'" in done.stderr


# -- `fednet run` against a coordinator ----------------------------------------


async def _start_server(aiohttp_server: Any, tmp_path: Path, **settings: Any) -> str:
    app = create_app(ServerSettings(state_dir=tmp_path / "state", **settings))
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def _fednet_async(
    *argv: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fednet",
        *argv,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.json()


async def test_run_no_follow_prints_the_id_and_takes_env_config(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """`fednet run --no-follow` prints the run id; FEDNET_RUN_* set its config."""
    base = await _start_server(aiohttp_server, tmp_path)
    proc = await _fednet_async(
        "run",
        "--no-follow",
        "--min-clients",
        "1",
        env={
            "FEDNET_API": base,
            "FEDNET_RUN_ROUNDS": "7",
            "FEDNET_RUN_TASK": "breast_cancer",
        },
    )
    code, out, err = await _finish(proc)

    assert code == 0, err
    run = await _get(f"{base}/api/runs/{int(out.strip())}")
    assert (run["config"]["rounds"], run["config"]["task"]) == (7, "breast_cancer")
    assert run["config"]["min_clients"] == 1


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_run_exits_1_when_the_run_is_stopped(
    aiohttp_server: Any, tmp_path: Path, token: str | None
) -> None:
    """`fednet run` follows until the run ends and exits 1 if it did not finish.

    With an admin token, following reads the run with it (reads need a token).
    """
    base = await _start_server(aiohttp_server, tmp_path, admin_token=token)
    env = {"FEDNET_ADMIN_TOKEN": token} if token else None
    proc = await _fednet_async("run", "--server", base, "--rounds", "3", env=env)
    for _ in range(600):
        if await _get(f"{base}/api/runs", token):
            break
        await asyncio.sleep(0.1)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/api/runs/1/stop") as resp:
            assert resp.status == 200
    code, out, err = await _finish(proc)

    assert code == 1, out + err
    assert "run 1 stopped" in out


async def test_run_exits_2_when_another_run_is_active(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """A launch refused with 409 exits 2 and prints the server's reason."""
    base = await _start_server(aiohttp_server, tmp_path)
    first = await _finish(await _fednet_async("run", "--server", base, "--no-follow"))
    assert first[0] == 0, first[2]

    code, out, err = await _finish(await _fednet_async("run", "--server", base))

    assert code == 2, out + err
    assert "409" in err and "run 1 is still active" in err


async def test_run_needs_the_admin_token_when_the_server_has_one(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """Without the admin token `fednet run` exits 2; FEDNET_ADMIN_TOKEN lets it in."""
    base = await _start_server(aiohttp_server, tmp_path, admin_token="s3cret")

    refused = await _finish(await _fednet_async("run", "--server", base, "--no-follow"))
    accepted = await _finish(
        await _fednet_async(
            "run",
            "--server",
            base,
            "--no-follow",
            env={"FEDNET_ADMIN_TOKEN": "s3cret"},
        )
    )

    assert refused[0] == 2 and "401" in refused[2] and "admin token" in refused[2]
    assert accepted[0] == 0 and accepted[1].strip() == "1", accepted[2]


def test_run_against_an_unreachable_server_says_so_without_a_traceback() -> None:
    """`fednet run` with nothing listening exits 2 with one line naming the server."""
    done = _fednet("run", "--server", "http://127.0.0.1:9", "--rounds", "2")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "fednet run:" in done.stderr and "127.0.0.1:9" in done.stderr


def test_server_listens_with_a_backlog_for_a_fleet_dialling_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The listen queue holds thousands of dials, not aiohttp's default 128."""
    from aiohttp import web

    from fednet import commands

    seen: dict[str, Any] = {}

    def run_app(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        kwargs["loop"].close()

    monkeypatch.setattr(web, "run_app", run_app)
    args = _parse("server", "--state-dir", str(tmp_path), "--port", "0")
    assert commands.server_command(args) == 0
    assert seen["backlog"] >= 4096


def test_client_trainers_come_from_flags_or_fednet_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--trainer repeats; FEDNET_TRAINER (comma-separated) counts without flags."""
    monkeypatch.setenv("FEDNET_TRAINER", "a.b:c, cnn=pkg.mod:make")

    from_env = _parse("client")
    flags = _parse("client", "--trainer", "x:y", "--trainer", "n=p.q:r")

    assert from_env.trainer is None
    assert from_env.trainer_env == ("a.b:c", "cnn=pkg.mod:make")
    assert flags.trainer == ["x:y", "n=p.q:r"]
