"""Account pages owned by billing: membership, invitations, API tokens, credits, keys, statements."""
from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("account/switch/", views.switch, name="account-switch"),
    path("account/members/", views.members, name="members"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
