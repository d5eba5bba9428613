"""Forms of the credits, keys and statements pages, and of the admin's balance adjustment."""
from decimal import Decimal

from django import forms

from core.money import MAX_AMOUNT_USD

from .models import ApiKey
from .periods import WEEKDAYS

# Amounts stay within the ledger's range (bigint units); the message names the bound.
_UP_TO = {"max_value": f"Enter an amount up to ${MAX_AMOUNT_USD:,}."}
MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal(0), "max_value": MAX_AMOUNT_USD,
         "error_messages": _UP_TO}


class BuyForm(forms.Form):
    amount = forms.DecimalField(label="Amount (USD)", **MONEY)
    save_method = forms.BooleanField(label="Save the payment method for auto top-up", required=False)


class AutoTopupForm(forms.Form):
    enabled = forms.BooleanField(label="Top up automatically", required=False)
    threshold = forms.DecimalField(label="When the balance falls under (USD)", **MONEY)
    amount = forms.DecimalField(label="Add (USD)", **MONEY)
    monthly_cap = forms.DecimalField(label="At most per month (USD)", help_text="credits added automatically per month",
                                     **MONEY)


class LowBalanceForm(forms.Form):
    threshold = forms.DecimalField(label="Email the owners when the balance falls under (USD)", required=False,
                                   help_text="empty: no alert", **MONEY)


class PromoForm(forms.Form):
    code = forms.CharField(max_length=40)


def percentages(raw: str) -> list[int]:
    """"50, 80%, 90" as [50, 80, 90] (ValidationError otherwise); the range is billing.budgets' check."""
    parts = [part.strip().rstrip("%") for part in raw.split(",") if part.strip()]
    try:
        return sorted({int(part) for part in parts})
    except ValueError:
        raise forms.ValidationError("Whole percentages separated by commas.") from None


class KeyLimitForm(forms.Form):
    limit = forms.DecimalField(label="Limit (USD)", required=False, max_digits=14, decimal_places=4,
                               min_value=Decimal(0), max_value=MAX_AMOUNT_USD, error_messages=_UP_TO,
                               help_text="empty: no limit")
    interval = forms.ChoiceField(choices=ApiKey.Interval.choices)
    alerts = forms.CharField(label="Alert at (%)", max_length=60, required=False,
                             help_text="e.g. 50, 80; 100% always alerts")

    def clean_alerts(self) -> list[int]:
        return percentages(self.cleaned_data["alerts"])


class UnusualSpendForm(forms.Form):
    k = forms.DecimalField(label="Alert when the hour's spend is over the usual by more than k × its usual deviation, k =",
                           max_digits=4, decimal_places=1, min_value=Decimal("0.5"), max_value=Decimal("99.9"))
    minimum = forms.DecimalField(label="and by at least (USD)", **MONEY)


class AdjustForm(forms.Form):
    amount = forms.DecimalField(label="Amount (USD)", max_digits=22, decimal_places=10,
                                min_value=-MAX_AMOUNT_USD, max_value=MAX_AMOUNT_USD,
                                error_messages={**_UP_TO, "min_value": f"Enter a debit up to ${MAX_AMOUNT_USD:,}."},
                                help_text="positive credits, negative debits")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="required; kept on the entry")
    token = forms.CharField(widget=forms.HiddenInput, help_text="posts once, however often the form is sent")

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why.")
        return reason

    def clean_amount(self) -> Decimal:
        if self.cleaned_data["amount"] == 0:
            raise forms.ValidationError("An adjustment moves the balance.")
        return self.cleaned_data["amount"]


class BudgetForm(forms.Form):
    """A budget as the budgets page edits it (billing.budgets checks the rest: scope and target)."""

    scope = forms.ChoiceField(choices=[(v, label) for v, label in
                                       (("account", "the account"), ("key", "an API key"), ("user", "an end user"),
                                        ("each_user", "each end user"), ("tag", "a tag"))])
    target = forms.CharField(max_length=128, required=False, help_text="the key id, end user or tag; empty otherwise")
    amount = forms.DecimalField(label="Amount (USD)", max_digits=14, decimal_places=4, min_value=Decimal(0),
                                max_value=MAX_AMOUNT_USD, error_messages=_UP_TO)
    period = forms.ChoiceField(choices=[("day", "per day"), ("week", "per week"), ("month", "per month"),
                                        ("none", "in all (no reset)")])
    mode = forms.ChoiceField(choices=[("hard", "hard: the gateway refuses"), ("soft", "soft: alerts only")])
    alerts = forms.CharField(label="Alert at (%)", max_length=60, required=False, help_text="e.g. 50, 80, 100")

    def clean_alerts(self) -> list[int]:
        return percentages(self.cleaned_data["alerts"])


class WeekStartForm(forms.Form):
    week_start = forms.TypedChoiceField(coerce=int, choices=list(enumerate(WEEKDAYS)))
