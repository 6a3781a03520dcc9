"""Form fields every menu's forms share."""

from __future__ import annotations

from wtforms import IntegerField

from agent.validation import WHOLE_NUMBER


class WholeNumberField(IntegerField):
    """An integer field that refuses other text in the words the API uses for the same mistake."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(WHOLE_NUMBER) from None
