"""The staff form that enters (or corrects) an endpoint's price from a date and plans its reprice."""
from datetime import UTC, datetime, time
from decimal import Decimal

from django import forms

from marketplace.models import Endpoint, Model, Provider

_PER_TOKEN = Decimal(1_000_000)
_PLACES = Decimal(1).scaleb(-15)  # EndpointPrice keeps 15 decimal places per token


def _per_million(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(min_value=Decimal(0), max_digits=24, decimal_places=9, **kwargs)


class RepriceForm(forms.Form):
    model = forms.ModelChoiceField(queryset=Model.objects.order_by("slug"), to_field_name="slug")
    provider = forms.ModelChoiceField(queryset=Provider.objects.order_by("name"))
    start = forms.DateField(label="From (UTC day)", help_text="the price applies from 00:00 UTC that day")
    end = forms.DateField(label="Until (exclusive, optional)", required=False,
                          help_text="empty: until the endpoint's next price, else now")
    prompt = _per_million(label="Prompt, USD per 1M tokens")
    completion = _per_million(label="Completion, USD per 1M tokens")
    cache_read = _per_million(label="Cache read, USD per 1M tokens", required=False,
                              help_text="empty: the prompt price")
    reasoning = _per_million(label="Reasoning, USD per 1M tokens", required=False,
                             help_text="empty: the completion price")

    def clean(self):
        data = super().clean()
        if data.get("model") and data.get("provider") and not Endpoint.objects.filter(
                model=data["model"], provider=data["provider"]).exists():
            raise forms.ValidationError("This provider does not serve this model.")
        if data.get("start") and data.get("end") and not data["start"] < data["end"]:
            raise forms.ValidationError("The range is empty: the end must come after the start.")
        for name in ("prompt", "completion", "cache_read", "reasoning"):
            if data.get(name) is not None:  # 9 places per 1M tokens are 15 per token: exact
                data[name] = (data[name] / _PER_TOKEN).quantize(_PLACES)
        return data

    @staticmethod
    def moment(day) -> datetime:
        return datetime.combine(day, time(0), tzinfo=UTC)
