"""Public rankings from the rollups: leaderboards, series over time, a model's endpoint figures,
their cache (one version for the site) and its prewarm, and the public pages and API built on them."""
