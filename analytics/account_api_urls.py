"""Account API routes under /api/v1/: owned by the account-analytics work."""
urlpatterns: list = []
