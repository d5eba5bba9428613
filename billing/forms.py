from django import forms
from django.contrib.auth.forms import UserCreationForm

from core.timerange import zone_choices

from .models import Membership


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class SignUpForm(UserCreationForm):
    """Create a user while accepting an invitation (the invitation's email is theirs)."""


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, for example “billing export”.")


class AccountSettingsForm(forms.Form):
    time_zone = forms.TypedChoiceField(
        choices=lambda: [(name, name) for name in zone_choices()], initial="UTC",
        help_text="Days, weeks and months of your pages, reports, statements and forecast.")
