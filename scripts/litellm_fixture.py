"""Write the LiteLLM spend-log fixtures with LiteLLM itself (dev only; LiteLLM is no dependency of Tokengrid).

    python scripts/litellm_fixture.py [--venv /tmp/litellm-fixture] [--out tests/analytics/ingest/data]

Makes (or reuses) a throwaway virtualenv with `litellm` from PyPI (LITELLM_VERSION, the proxy
release the issue's real export came from, plus the packages its proxy's spend-tracking module
imports), then runs itself inside it: each planned request goes through `litellm.acompletion`
with a mock response (no network), the logging callback catches what LiteLLM hands its loggers,
and the row is built by the proxy's own spend-log writer, `get_logging_payload` (the function that
fills `LiteLLM_SpendLogs`). What the proxy itself adds before a call is given as the proxy gives
it: the key's metadata (`user_api_key_*`, as its auth stamps them), the end user, the client's
User-Agent header (LiteLLM turns it into `User-Agent: …` tags), `spend_logs_metadata`, and
`status` = failure with the error's information for a failed call (its failure hook).

Only the clock is pinned: the request times are the plan's (LiteLLM would read the wall clock),
so a run writes the same rows but for the ids LiteLLM draws (response ids, call ids of failures,
and the session it makes up for a request without one), which differ from run to run: after a run,
the tests' expectations of ids need the new ones. The rows are written as the exports
hold them: CSV with a header row (`metadata` and `request_tags` as JSON text), and JSON Lines;
times without zone, milliseconds with trailing zeros trimmed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

LITELLM_VERSION = "1.110.2"
# What the proxy's spend-tracking module (and the proxy server it reads settings from) imports beyond
# litellm's own requirements: the `proxy` extra pins a `litellm-proxy` package that PyPI does not serve.
PROXY_IMPORTS = ["fastapi", "backoff", "orjson", "redis", "pyjwt", "apscheduler", "python-multipart",
                 "cryptography", "email-validator", "websockets", "semver", "expression", "fastapi-sso", "mcp",
                 "soundfile"]
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "analytics" / "ingest" / "data"

# (request, provider route, model group, key, team, org, end user, session, tags, app metadata,
#  user agent, streamed, outcome) — outcome "ok", or the error a failed call raises.
KEYS = {  # key hash (LiteLLM stores the sha256 of the key) -> (alias, owner user, team, team alias, org)
    "k1": ("88dc28d0f0a94e2b5c3d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c", "ci-pipeline", "user-ana",
           "team-search", "Search", "org-acme"),
    "k2": ("5f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100", "support-bot", "user-bo",
           "team-support", "Support", "org-acme"),
    "k3": ("c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00", "", "user-cy", "team-lab", "Lab", ""),
    "k4": ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "notebook", "user-di", "", "", ""),
}
PLAN = [
    # minute, route, model_group, key, end_user, session, tags, spend_logs_metadata, user agent, stream, error
    (0, "openai/gpt-4o", "gpt-4o", "k1", "cust-1", "sess-a", ["prod"], {"app": "https://search.acme.example"},
     "OpenAI/Python 1.99.1", False, None),
    (1, "openai/gpt-4o", "gpt-4o", "k1", "cust-1", "sess-a", ["prod"], {"app": "https://search.acme.example"},
     "OpenAI/Python 1.99.1", True, None),
    (2, "openai/gpt-4o-mini", "openai/gpt-4o-mini", "k2", "cust-2", None, ["support", "tier-1"],
     {"origin": "https://help.acme.example", "app_name": "Acme Help"}, "curl/8.5.0", False, None),
    (3, "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "k2", None, "sess-b", [],
     {"app_name": "Desk"}, "curl/8.5.0", True, None),
    (4, "anthropic/claude-haiku-4-5-20251001", "anthropic/claude-haiku-4-5-20251001", "k3", "cust-3", "sess-c",
     ["batch"], {}, "python-httpx", False, None),
    (5, "gemini/gemini-2.5-flash", "gemini-2.5-flash", "k3", "cust-3", "sess-c", ["batch"], {"app": "https://lab.example"},
     "python-httpx", True, None),
    (6, "deepseek/deepseek-chat", "deepseek-chat", "k4", None, None, [], {"team_note": "no app here"},
     "OpenAI/Python 1.99.1", False, None),
    (7, "mistral/mistral-small-latest", "mistral-small-latest", "k4", "cust-4", None, ["eval"], {},
     "OpenAI/Python 1.99.1", False, None),
    (8, "groq/openai/gpt-oss-120b", "openai/gpt-oss-120b", "k1", "cust-1", "sess-a", ["prod"],
     {"app": "https://search.acme.example"}, "OpenAI/Python 1.99.1", True, None),
    (9, "openai/gpt-4o", "gpt-4o", "k1", "cust-5", "sess-d", ["prod"], {"app": "https://search.acme.example"},
     "OpenAI/Python 1.99.1", False, "RateLimitError"),
    (10, "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "k2", None, None, ["support"], {},
     "curl/8.5.0", False, "InternalServerError"),
    (11, "gemini/gemini-2.5-flash", "gemini-2.5-flash", "k3", "cust-3", "sess-c", [], {},
     "python-httpx", True, None),
    (12, "azure/gpt-4o", "gpt-4o", "k4", "cust-4", None, ["eval"], {"app": "https://notebook.example"},
     "OpenAI/Python 1.99.1", False, None),
]
MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]
ANSWER = "Revenue grew 12%. Costs fell 3%. Headcount was flat."


def _venv_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import litellm.proxy.proxy_server"],
                           capture_output=True, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    if probe.returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"litellm=={LITELLM_VERSION}", *PROXY_IMPORTS],
                       check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/litellm-fixture"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        python = _venv_python(args.venv)
        # The release's own cost map and tokenizers: no network.
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
        subprocess.run([str(python), __file__, "--inside", "--out", str(args.out)], check=True, env=env)
        return
    import asyncio

    args.out.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(_generate())
    _write(rows, args.out)


async def _generate() -> list[dict]:  # runs inside the LiteLLM virtualenv
    import asyncio
    import uuid
    from datetime import UTC, datetime, timedelta

    import litellm
    from litellm.integrations.custom_logger import CustomLogger
    from litellm.litellm_core_utils.litellm_logging import StandardLoggingPayloadSetup
    from litellm.proxy.spend_tracking.spend_tracking_utils import get_logging_payload

    caught: dict[str, tuple] = {}

    class Catch(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            caught[kwargs["litellm_params"]["metadata"]["plan_index"]] = (kwargs, response_obj)

        async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
            caught[kwargs["litellm_params"]["metadata"]["plan_index"]] = (kwargs, kwargs.get("exception"))

    litellm.callbacks = [Catch()]
    litellm.num_retries = 0
    day = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    for index, (_minute, route, group, key, end_user, session, tags, custom, agent, stream, error) in enumerate(PLAN):
        key_hash, alias, owner, team, team_alias, org = KEYS[key]
        metadata = {
            "plan_index": str(index), "user_api_key": key_hash, "user_api_key_hash": key_hash,
            "user_api_key_alias": alias or None, "user_api_key_user_id": owner, "user_api_key_team_id": team or None,
            "user_api_key_team_alias": team_alias or None, "user_api_key_org_id": org or None,
            "user_api_key_end_user_id": end_user, "model_group": group, "tags": tags,
            "spend_logs_metadata": custom or None, "requester_ip_address": "10.0.0.7", "user_agent": agent,
        }
        options = {"metadata": metadata, "proxy_server_request": {"headers": {"user-agent": agent}},
                   "litellm_call_id": str(uuid.uuid4())}
        if session:
            options["litellm_trace_id"] = session
        if end_user:
            options["user"] = end_user
        mock = getattr(litellm, error)(message="mock failure", llm_provider=route.split("/")[0],
                                       model=route) if error else ANSWER
        try:
            response = await litellm.acompletion(model=route, messages=MESSAGES, mock_response=mock, stream=stream,
                                                 **options)
            if stream:
                async for _ in response:
                    pass
        except Exception:  # noqa: BLE001, S110 - the failure is the point: its callback has it
            pass
    await asyncio.sleep(1)  # LiteLLM logs from tasks it started
    rows = []
    for index, (minute, *_rest, stream, error) in enumerate(PLAN):
        kwargs, response_obj = caught[str(index)]
        start = day + timedelta(minutes=minute * 7, seconds=index * 3, milliseconds=104 + index * 10)
        first = start + timedelta(milliseconds=380 + index * 25)
        end = first + timedelta(milliseconds=1500 + index * 110)
        kwargs["completion_start_time"] = first if stream and not error else end  # as LiteLLM: = end unless streamed
        if error:
            metadata = kwargs["litellm_params"]["metadata"]
            metadata["status"] = "failure"  # what the proxy's failure hook adds
            metadata["error_information"] = StandardLoggingPayloadSetup.get_error_information(
                original_exception=response_obj)
            end = start + timedelta(milliseconds=200 + index)
            kwargs["completion_start_time"] = end
        payload = dict(get_logging_payload(kwargs, response_obj, start, end))
        rows.append(payload)
    return rows


def _time(value, sep: str) -> str:
    text = value.strftime(f"%Y-%m-%d{sep}%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text


COLUMNS = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
           "startTime", "endTime", "completionStartTime", "model", "model_id", "model_group", "custom_llm_provider",
           "api_base", "user", "metadata", "cache_hit", "cache_key", "request_tags", "team_id", "organization_id",
           "end_user", "requester_ip_address", "messages", "response", "session_id", "status",
           "mcp_namespaced_tool_name", "agent_id", "proxy_server_request", "request_duration_ms"]


def _write(rows: list[dict], out: Path) -> None:
    import csv
    import json

    with (out / "litellm_spend_logs.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            record = {}
            for column in COLUMNS:
                value = row.get(column)
                if column in ("startTime", "endTime", "completionStartTime") and value is not None:
                    value = _time(value, "T")
                elif column in ("metadata", "request_tags", "messages", "response", "proxy_server_request") \
                        and isinstance(value, str) and value:
                    value = json.loads(value)
                record[column] = value
            handle.write(json.dumps(record) + "\n")
    with (out / "litellm_spend_logs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            cells = []
            for column in COLUMNS:
                value = row.get(column)
                if column in ("startTime", "endTime", "completionStartTime") and value is not None:
                    value = _time(value, " ")
                elif isinstance(value, dict | list):
                    value = json.dumps(value)
                cells.append("" if value is None else repr(value) if isinstance(value, float) else value)
            writer.writerow(cells)


if __name__ == "__main__":
    main()
