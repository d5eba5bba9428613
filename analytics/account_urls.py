"""Account pages (/account/...): owned by the account-analytics work."""
urlpatterns: list = []
