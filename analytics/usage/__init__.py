"""An account's own usage: the rollup queries (`queries`, `totals`), their cache (`cache`), the
query-string parsing (`params`), the generation log, the exports (`exports` for usage.csv,
`reports` for the printable month), and the account pages and API (`views`, `api`)."""
