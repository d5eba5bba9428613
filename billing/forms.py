from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Membership


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class SignUpForm(UserCreationForm):
    """Create a user while accepting an invitation (the invitation's email is theirs)."""


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, for example “billing export”.")
