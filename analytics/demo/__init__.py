"""The demo's own code, apart from the pipeline it feeds: `traffic`, realistic routed-traffic logs over
the real catalog (the `generate_traffic` command, the demo, the tests and the benchmarks). Ingestion
never imports it; it only writes files that ingestion reads like any gateway's."""
