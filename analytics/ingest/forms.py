from django import forms

from . import formats


class UploadForm(forms.Form):
    file = forms.FileField(help_text="JSON Lines or CSV, optionally gzip-compressed")
    format = forms.ChoiceField(choices=[("auto", "auto-detect")] + [(f, f) for f in formats.FORMATS],
                               initial="auto")
