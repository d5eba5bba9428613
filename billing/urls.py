"""Account pages owned by billing: membership, invitations, API tokens, credits, keys, statements."""
from django.urls import path

from . import alert_views, budget_views, credit_views, views

app_name = "billing"

urlpatterns = [
    path("account/switch/", views.switch, name="account-switch"),
    path("account/settings/", views.account_settings, name="account-settings"),
    path("account/members/", views.members, name="members"),
    path("account/members/remove/", views.member_remove, name="member-remove"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/revoke/", views.token_revoke, name="token-revoke"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("account/credits/", credit_views.credits, name="credits"),
    path("account/credits/buy/", credit_views.credits_buy, name="credits-buy"),
    path("account/credits/refund/", credit_views.credits_refund, name="credits-refund"),
    path("account/credits/auto-topup/", credit_views.credits_auto_topup, name="credits-auto-topup"),
    path("account/credits/alert/", credit_views.credits_alert, name="credits-alert"),
    path("account/credits/promo/", credit_views.credits_promo, name="credits-promo"),
    path("account/credits/demo-card/", credit_views.credits_demo_card, name="credits-demo-card"),
    path("account/credits/budgets/", budget_views.budgets_page, name="budgets"),
    path("account/credits/budgets/save/", budget_views.budget_save, name="budget-save"),
    path("account/credits/budgets/delete/", budget_views.budget_delete, name="budget-delete"),
    path("account/credits/budgets/week/", budget_views.budget_week, name="budget-week"),
    path("account/keys/", credit_views.keys, name="keys"),
    path("account/statements/", credit_views.statements, name="statements"),
    path("account/statements/<str:month>/", credit_views.statement, name="statement"),
    path("account/statements/<str:month>/csv", credit_views.statement_csv, name="statement-csv"),
    path("billing/stripe/webhook/", credit_views.stripe_webhook, name="stripe-webhook"),
    # Alert channels (issue 33).
    path("account/alerts/", alert_views.alerts_page, name="alerts"),
    path("account/alerts/<int:channel_id>/", alert_views.alert_channel_log, name="alert-log"),
    path("account/alerts/add/", alert_views.alert_channel_add, name="alert-add"),
    path("account/alerts/events/", alert_views.alert_channel_events, name="alert-events"),
    path("account/alerts/rotate/", alert_views.alert_channel_rotate, name="alert-rotate"),
    path("account/alerts/pause/", alert_views.alert_channel_pause, name="alert-pause"),
    path("account/alerts/delete/", alert_views.alert_channel_delete, name="alert-delete"),
    path("account/alerts/test/", alert_views.alert_channel_test, name="alert-test"),
    path("account/alerts/resend/", alert_views.alert_delivery_resend, name="alert-resend"),
    # Alert thresholds (issue 33)
    path("account/credits/unusual/", credit_views.credits_unusual, name="credits-unusual"),
]
