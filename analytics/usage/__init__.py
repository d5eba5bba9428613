"""An account's own usage: the grouping engine over the rollups (`grouping`, `sources`, `totals`,
`buckets`, `names`) and the selectors built on it (`overview`, `explorer`, `savings`), their cache
(`cache`, filled by `prewarm`), the query-string parsing (`params`, `filters`), the generation log
(`generation_log`, `log_histogram`, `cost_breakdown`, `log_export`), the exports (`exports` for
usage.csv, `reports` for the printable month), billing's door to usage (`spend`), and the account
pages and API (`views`, `api`)."""
