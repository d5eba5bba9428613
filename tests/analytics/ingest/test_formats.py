"""The three log formats: records, every reject reason, tolerance, and a fuzz that never raises."""
import json
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.ingest import formats
from analytics.ingest.formats import Record, Rejected, detect_format, openrouter, parse_lines
from analytics.models import TAGS_MAX_LENGTH

from .test_ingest_entry import OPENROUTER_EXAMPLE


def _parse(fmt, *lines, header=None, **kwargs):
    return list(parse_lines(fmt, enumerate((ln if isinstance(ln, bytes) else ln.encode() for ln in lines), 1),
                            header=header.encode() if header else None, **kwargs))


def _good(**fields) -> str:
    base = {"id": "g1", "created_at": "2026-01-02T03:04:05Z", "account": "a", "model": "x/y",
            "tokens_prompt": 10, "tokens_completion": 5}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_the_real_openrouter_record_parses_exactly():
    [record] = _parse("openrouter", OPENROUTER_EXAMPLE)
    assert record == Record(
        line=1, id="gen-1771967973-0hZ8J5kY7qLMOKbPx0u3",
        created_at=datetime(2026, 2, 24, 21, 19, 33, 705000, tzinfo=UTC), account="acct_7f3a", api_key="key_91c2",
        model="meta-llama/llama-4-scout-17b-16e-instruct", provider_name="DeepInfra",
        origin="https://github.com/wvanderp/Trick-question-bench", app_name=None, app_categories=(),
        tokens_prompt=65, tokens_completion=116, tokens_reasoning=0, tokens_cached=0,
        total_cost=Decimal("0.00003452"), is_byok=False, latency=1016, generation_time=2940, status=200,
        provider_responses=[{"provider_name": "DeepInfra", "status": 200, "latency": 420}], finish_reason=None,
        streamed=True, cancelled=True, num_media_prompt=None, num_media_completion=None, num_search_results=None,
        end_user=None, session_id=None, tags="")
    bare = json.dumps(json.loads(OPENROUTER_EXAMPLE)["data"])
    assert _parse("openrouter", bare)[0] == record


def test_account_and_key_may_sit_beside_the_wrapper():
    inner = json.loads(_good(account=..., api_key=...))
    [record] = _parse("openrouter", json.dumps({"data": inner, "account": "outer", "api_key": "k"}))
    assert (record.account, record.api_key) == ("outer", "k")


@pytest.mark.parametrize(("line", "reason"), [
    ('{"id": "x", "model": ', "invalid_json"),
    ("[1, 2]", "type:record"),
    (_good(id=...), "missing:id"),
    (_good(id=""), "missing:id"),
    (_good(id=12), "type:id"),
    (_good(id="x" * 129), "too_long:id"),
    (_good(id="x" * 10_000), "too_long:id"),
    (_good(model=...), "missing:model"),
    (_good(account=...), "missing:account"),
    (_good(created_at=...), "missing:created_at"),
    (_good(created_at="yesterday"), "bad_timestamp"),
    (_good(created_at="1999-12-31T23:59:59Z"), "out_of_range:created_at"),
    (_good(created_at="2999-01-01T00:00:00Z"), "out_of_range:created_at"),
    (_good(tokens_prompt=-1), "negative:tokens_prompt"),
    (_good(tokens_prompt="12"), "type:tokens_prompt"),
    (_good(tokens_prompt=True), "type:tokens_prompt"),
    (_good(tokens_prompt=1.5), "type:tokens_prompt"),
    (_good(tokens_completion=2**60), "out_of_range:tokens_completion"),
    (_good(total_cost=-0.1), "negative:total_cost"),
    (_good(total_cost="abc"), "type:total_cost"),
    (_good(total_cost=1e9), "out_of_range:total_cost"),
    (_good(latency=-5), "negative:latency"),
    (_good(status="ok"), "type:status"),
    (_good(status=42), "out_of_range:status"),
    (_good(is_byok="maybe"), "type:is_byok"),
    (_good(provider_responses={"a": 1}), "type:provider_responses"),
    (_good(model="m" * 201), "too_long:model"),
    (_good(origin="o" * 501), "too_long:origin"),
    ('{"id": "g1", "total_cost": NaN}', "invalid_json"),
    ('{"id": "g1", "total_cost": Infinity}', "invalid_json"),
    (_good(model="lab/\u0000m"), "nul_character"),
    (_good(provider_responses=[{"provider_name": "A\u0000", "status": 200}]), "nul_character"),
    ('{"id": "g1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "invalid_json"),
])
def test_each_bad_record_is_rejected_with_its_reason_and_kept_raw(line, reason):
    parsed = _parse("openrouter", _good(id="before"), line, _good(id="after"))
    assert [type(p).__name__ for p in parsed] == ["Record", "Rejected", "Record"]
    assert (parsed[1].line, parsed[1].reason) == (2, reason)
    assert parsed[1].raw == line[:2048]


def test_tolerated_input_bom_crlf_blank_lines_and_floats_with_integral_values():
    parsed = _parse("openrouter", b"\xef\xbb\xbf" + _good(id="a").encode(), "", "   ",
                    _good(id="b", tokens_prompt=12.0) + "\r\n")
    assert [(p.line, p.id, p.tokens_prompt) for p in parsed] == [(1, "a", 10), (4, "b", 12)]


def test_a_line_over_the_limit_is_too_large_and_invalid_utf8_is_named():
    big = b'{"id": "' + b"x" * 10_000_000 + b'"}'
    parsed = _parse("openrouter", big, b'{"id": "\xff\xfe"}')
    assert [(p.reason, len(p.raw)) for p in parsed] == [("too_large", 2048), ("invalid_utf8", len(parsed[1].raw))]


def test_timestamps_without_zone_are_utc_and_offsets_are_converted():
    parsed = _parse("openrouter", _good(created_at="2026-01-02 03:04:05.123"),
                    _good(id="g2", created_at="2026-01-02T05:04:05+02:00"))
    assert parsed[0].created_at == datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert parsed[1].created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


LITELLM_HEADER = ("request_id,call_type,api_key,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,"
                  "completionStartTime,model,model_group,custom_llm_provider,api_base,user,metadata,cache_hit,"
                  "request_tags,team_id,organization_id,end_user,requester_ip_address,status,session_id")
LITELLM_ROWS = [
    'chatcmpl-1,acompletion,88dc28d0f0,0.0011564000000000001,150,100,50,2026-03-01 10:00:00,2026-03-01 10:00:02.5,'
    '2026-03-01 10:00:00.4,gpt-4o-2024-08-06,gpt-4o,openai,https://api.openai.com,u1,'
    '"{""spend_logs_metadata"": {""app"": ""https://tool.example"", ""app_name"": ""Tool""},'
    ' ""user_api_key_alias"": ""ci""}",False,"[""User-Agent: curl"", ""User-Agent: curl/8.5.0"", ""prod""]",'
    'team-a,org-9,,10.0.0.1,success,conv-1',
    'chatcmpl-2,acompletion,99aa,0.0,0,0,0,2026-03-01 11:00:00,2026-03-01 11:00:01,2026-03-01 11:00:01,'
    'claude-3-5-sonnet,,anthropic,,u2,{},False,[],,,,,failure,5c7e',
]


def test_litellm_spend_logs_as_csv_map_to_canonical_fields():
    parsed = _parse("litellm", *LITELLM_ROWS, header=LITELLM_HEADER)
    first, second = parsed
    assert (first.id, first.account, first.api_key, first.api_key_name, first.model, first.provider_name) == (
        "chatcmpl-1", "org-9", "88dc28d0f0", "ci", "gpt-4o", "openai")
    assert (first.origin, first.app_name, first.tokens_prompt, first.tokens_completion, first.total_cost) == (
        "https://tool.example", "Tool", 100, 50, Decimal("0.0011564000"))
    assert (first.latency, first.generation_time, first.status) == (400, 2100, 200)
    # the User-Agent tags are LiteLLM's own; `user` is the key's owner, never the end user
    assert (first.tags, first.end_user, first.session_id) == (",prod,", None, "conv-1")
    # not streamed: completionStartTime = endTime, so no generation was timed (unknown throughput)
    assert (second.account, second.model, second.status, second.latency, second.generation_time) == (
        "u2", "claude-3-5-sonnet", 500, 1000, None)
    assert (second.total_cost, second.end_user, second.session_id, second.api_key_name) == (
        Decimal(0), None, "5c7e", None)


def test_litellm_spend_logs_as_json_lines():
    row = {"request_id": "r1", "startTime": "2026-03-01T10:00:00.104", "model": "gpt-4o", "spend": 1.2e-05,
           "prompt_tokens": 3, "completion_tokens": 4, "team_id": "t1", "status": "success",
           "metadata": json.dumps({"spend_logs_metadata": {"origin": "https://a.example"}}),
           "custom_llm_provider": "azure"}
    [record] = _parse("litellm", json.dumps(row))
    assert (record.account, record.origin, record.app_name, record.provider_name, record.total_cost) == (
        "t1", "https://a.example", None, "azure", Decimal("0.0000120000"))
    assert record.created_at == datetime(2026, 3, 1, 10, 0, 0, 104000, tzinfo=UTC)


@pytest.mark.parametrize(("spend", "cost"), [
    (0.0011564000000000001, "0.0011564000"), ("0.0011564000000000001", "0.0011564000"),
    (2.5e-11, "0.0000000000"), (3.5e-10, "0.0000000004"), (4.5e-10, "0.0000000004"),  # half-even
    ("1.5E-5", "0.0000150000"), (0, "0E-10"),
])
def test_litellm_spend_is_rounded_half_even_to_1e_10(spend, cost):
    row = {"request_id": "r1", "startTime": "2026-03-01T10:00:00", "model": "gpt-4o", "spend": spend}
    [record] = _parse("litellm", json.dumps(row))
    assert record.total_cost == Decimal(cost)
    assert record.total_cost.as_tuple().exponent == -10


@pytest.mark.parametrize(("row", "reason"), [
    ({"spend": -0.1}, "negative:total_cost"), ({"spend": "abc"}, "type:total_cost"),
    ({"startTime": "yesterday"}, "bad_timestamp"), ({"endTime": "soon"}, "bad_timestamp:endTime"),
    ({"request_id": ""}, "missing:id"), ({"prompt_tokens": "many"}, "type:tokens_prompt"),
    ({"request_tags": "[1, 2]"}, "type:tags"), ({"request_tags": {"a": 1}}, "type:tags"),
    ({"session_id": "s" * 129}, "too_long:session_id"),
])
def test_bad_litellm_rows_are_rejected_with_a_reason(row, reason):
    base = {"request_id": "r1", "startTime": "2026-03-01T10:00:00", "model": "gpt-4o", "spend": 0.1}
    [rejected] = _parse("litellm", json.dumps({**base, **row}))
    assert rejected.reason == reason


def test_litellm_metadata_that_is_not_an_object_is_no_app_and_no_key_name():
    base = {"request_id": "r1", "startTime": "2026-03-01T10:00:00", "model": "gpt-4o", "spend": 0.1, "api_key": "h"}
    for metadata in ("{broken", "[1]", 7, {"spend_logs_metadata": "x", "user_api_key_alias": 5},
                     {"spend_logs_metadata": {"app": 3}, "user_api_key_alias": "k" * 300}):
        [record] = _parse("litellm", json.dumps({**base, "metadata": metadata}))
        assert record.origin is None
        assert record.api_key_name in (None, "k" * 200)


def test_generic_csv_with_a_mixed_case_header():
    header = "ID,Created_At,Account,Model,Tokens_Prompt,Tokens_Completion,Total_Cost,Is_BYOK,Extra"
    parsed = _parse("csv", "c1,2026-01-01T00:00:00Z,acct,x/y,7,8,0.25,yes,ignored", "c2,bad,acct,x/y,1,1,,no,",
                    "c3,2026-01-01T00:00:00Z,acct", header=header)
    assert (parsed[0].id, parsed[0].tokens_prompt, parsed[0].total_cost, parsed[0].is_byok) == (
        "c1", 7, Decimal("0.25"), True)
    assert (parsed[1].reason, parsed[2].reason) == ("bad_timestamp", "bad_csv")


def test_the_end_user_session_and_tags_are_kept():
    [record] = _parse("openrouter", _good(user="user_1", session_id="s-9", tags=["prod", " team-b", "prod"]))
    assert (record.end_user, record.session_id, record.tags) == ("user_1", "s-9", ",prod,team-b,")
    # one comma-separated string, or a list whose items hold commas: the same tags, sorted, each once
    [text] = _parse("openrouter", _good(tags="team-b, prod,,"))
    [mixed] = _parse("openrouter", _good(tags=["team-b,prod"]))
    assert text.tags == mixed.tags == ",prod,team-b,"
    [none] = _parse("openrouter", _good(user="", session_id=None, tags=[]))
    assert (none.end_user, none.session_id, none.tags) == (None, None, "")
    [numbered] = _parse("openrouter", _good(user=42))  # a number names a user as its text
    assert numbered.end_user == "42"
    sixteen = [f"t{i:02d}" for i in range(16)]
    [full] = _parse("openrouter", _good(tags=[*sixteen, "t00"], user="u" * 128, session_id="s" * 128))
    assert full.tags == "," + ",".join(sixteen) + ","
    assert len(full.tags) <= TAGS_MAX_LENGTH


@pytest.mark.parametrize(("fields", "reason"), [
    ({"user": "u" * 129}, "too_long:user"),
    ({"session_id": "s" * 129}, "too_long:session_id"),
    ({"tags": [f"t{i}" for i in range(17)]}, "too_long:tags"),
    ({"tags": ",".join(f"t{i}" for i in range(17))}, "too_long:tags"),
    ({"tags": ["x" * 65]}, "too_long:tags"),
    ({"tags": [1, 2]}, "type:tags"),
    ({"tags": {"team": "a"}}, "type:tags"),
    ({"tags": ["a\x00b"]}, "nul_character"),
])
def test_bad_attribution_is_rejected_with_its_reason(fields, reason):
    line = _good(**fields)
    [rejected] = _parse("openrouter", line)
    assert (rejected.line, rejected.reason) == (1, reason)
    [csv_rejected] = _parse("csv", "c1,2026-01-01T00:00:00Z,acct,x/y,TAGS".replace(
        "TAGS", '"' + ",".join(f"t{i}" for i in range(17)) + '"'), header="id,created_at,account,model,tags")
    assert csv_rejected.reason == "too_long:tags"


def test_litellm_end_user_session_and_tags():
    row = {"request_id": "r1", "startTime": "2026-03-01T10:00:00Z", "model": "gpt-4o", "spend": 0.5,
           "prompt_tokens": 3, "completion_tokens": 4, "team_id": "t1", "user": "internal-7",
           "end_user": "customer-3", "request_tags": ["prod", "batch", "User-Agent: OpenAI/Python 1.99.1"],
           "session_id": "conv-1", "metadata": {"session_id": "not-here", "tags": ["not-here"]}}
    [record] = _parse("litellm", json.dumps(row))
    assert (record.account, record.end_user, record.session_id, record.tags) == (
        "t1", "customer-3", "conv-1", ",batch,prod,")
    # no end_user: no end user (the `user` column is the key's owner), and with no team it is the account
    del row["end_user"], row["team_id"], row["session_id"]
    row["request_tags"] = ["User-Agent: curl", "User-Agent: curl/8.5.0"]
    [record] = _parse("litellm", json.dumps(row))
    assert (record.account, record.end_user, record.session_id, record.tags) == ("internal-7", None, None, "")
    header = "request_id,startTime,model,spend,prompt_tokens,completion_tokens,end_user,request_tags,session_id"
    [from_csv] = _parse("litellm", 'r2,2026-03-01T10:00:00Z,gpt-4o,0.1,1,1,c-9,"[""a"", ""b""]",s2', header=header)
    assert (from_csv.end_user, from_csv.session_id, from_csv.tags) == ("c-9", "s2", ",a,b,")
    [broken] = _parse("litellm", 'r3,2026-03-01T10:00:00Z,gpt-4o,0.1,1,1,,"[""a"",",', header=header)
    assert broken.reason == "type:tags"


def test_generic_csv_user_session_and_comma_separated_tags():
    header = "id,created_at,account,model,user,session_id,tags"
    [record] = _parse("csv", 'c1,2026-01-01T00:00:00Z,acct,x/y,u-1,s-1,"b, a,b"', header=header)
    assert (record.end_user, record.session_id, record.tags) == ("u-1", "s-1", ",a,b,")


def test_detect_format():
    assert detect_format(OPENROUTER_EXAMPLE.encode()) == "openrouter"
    assert detect_format(_good().encode()) == "openrouter"
    assert detect_format(b'{"request_id": "r", "spend": 1}') == "litellm"
    assert detect_format(LITELLM_HEADER.encode()) == "litellm"
    assert detect_format(b"\xef\xbb\xbfid,model,account") == "csv"
    with pytest.raises(formats.FormatError, match="cannot detect format"):
        detect_format(b"hello,world")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
field_values = st.dictionaries(st.sampled_from([
    "id", "created_at", "account", "model", "api_key", "provider_name", "origin", "tokens_prompt",
    "tokens_completion", "native_tokens_cached", "total_cost", "is_byok", "latency", "status",
    "provider_responses", "streamed", "app_categories", "user", "session_id", "tags", "end_user",
    "request_tags", "metadata"]), json_values | st.sampled_from(
    ["2026-01-01T00:00:00Z", "x/y", "acct", 5, 0.25, -1, "", [{"provider_name": "P", "status": 502}],
     ["b", " a,b"], "t1, t2", ["x" * 65], [f"t{i}" for i in range(17)], "u" * 129]))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(st.binary(max_size=200), field_values.map(lambda d: json.dumps(d).encode())),
                      max_size=8),
       fmt=st.sampled_from(formats.FORMATS))
def test_fuzz_every_parser_never_raises_and_answers_each_non_blank_line(lines, fmt):
    header = b"id,created_at,account,model,tokens_prompt,request_id,spend,startTime"
    parsed = list(parse_lines(fmt, enumerate(lines, 1), header=header))
    bom = b"\xef\xbb\xbf"
    non_blank = [n for n, line in enumerate(lines, 1) if (line[3:] if line.startswith(bom) else line).strip()]
    assert [p.line for p in parsed] == non_blank
    assert all(isinstance(p, Record | Rejected) for p in parsed)


@settings(max_examples=300, deadline=None)
@given(record=field_values)
def test_the_fast_path_agrees_with_the_checked_path(record):
    line = json.dumps(record).encode()
    fast = list(parse_lines("openrouter", [(1, line)]))
    saved = openrouter._decode_bare, openrouter._decode_wrapped

    def refuse(data):
        raise msgspec.DecodeError("checked path only")

    openrouter._decode_bare = openrouter._decode_wrapped = refuse
    try:
        checked = list(parse_lines("openrouter", [(1, line)]))
    finally:
        openrouter._decode_bare, openrouter._decode_wrapped = saved
    assert fast == checked


def test_the_tags_column_holds_the_most_tags_a_record_may_have():
    from analytics.ingest.formats.fields import TAG_MAX_LENGTH, TAGS_MAX, tags_text

    most = [f"{i:02d}".ljust(TAG_MAX_LENGTH, "x") for i in range(TAGS_MAX)]
    assert len(tags_text(most)) == TAGS_MAX_LENGTH == TAGS_MAX * (TAG_MAX_LENGTH + 1) + 1
