"""What each usage counter of the rollups adds up, as SQL over rows shaped like ingestion's staging rows
(`failed`, `is_byok`, `cost_units`, `cost_source`, `latency`, the token counts).

One definition for the two places that count requests: ingestion's upserts into the rollups
(analytics.ingest.loader) and the account pages' sums over generations where no rollup holds a slice
(analytics.usage.sources), so a page summed from generations counts exactly what the rollups would.
The expressions name their columns unqualified: a query joining other tables must not join one with
such a column (the usage exports join models, providers, apps and keys: none has).
"""
from analytics.cost_sources import UNPRICED

SPEND = "CASE WHEN is_byok THEN 0 ELSE cost_units END"  # BYOK requests are billed by their provider
BYOK_TOKENS = "CASE WHEN is_byok THEN tokens_prompt + tokens_completion ELSE 0 END"
USAGE_SUMS = {
    "requests": "COUNT(*)",
    "failed": "SUM(failed)",
    "tokens_prompt": "SUM(tokens_prompt)",
    "tokens_completion": "SUM(tokens_completion)",
    "tokens_reasoning": "SUM(tokens_reasoning)",
    "tokens_cached": "SUM(tokens_cached)",
    "byok_tokens": f"SUM({BYOK_TOKENS})",
    "spend_units": f"SUM({SPEND})",
    "unpriced_requests": f"SUM(CASE WHEN {UNPRICED.sql()} THEN 1 ELSE 0 END)",
    # BYOK tokens are out of every price per 1M already (byok_tokens): counted once, there.
    "unpriced_tokens": f"SUM(CASE WHEN {UNPRICED.sql()} AND NOT is_byok"
                       " THEN tokens_prompt + tokens_completion ELSE 0 END)",
}
LATENCY_SUMS = {
    "latency_sum": "SUM(CASE WHEN failed = 0 THEN COALESCE(latency, 0) ELSE 0 END)",
    "latency_count": "COUNT(CASE WHEN failed = 0 THEN latency END)",
}
# The endpoint rollups' sums, over the staging rows and the fallback attempts (analytics.rollups): an attempt
# row has request 0 and counts in the attempt counters only.
ENDPOINT_SUMS = {**USAGE_SUMS, "requests": "SUM(request)", "attempts": "SUM(own_attempts)",
                 "failed_attempts": "SUM(own_failed)", "rate_limited_attempts": "SUM(own_rate_limited)",
                 "tool_call_requests": "SUM(tool_call)", "media_inputs": "SUM(media)",
                 "long_32k_requests": "SUM(long_32k)", "long_128k_requests": "SUM(long_128k)", **LATENCY_SUMS}
