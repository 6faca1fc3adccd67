"""Stored failures in the reader's language (certs.problems):
{{ order.failure|failure:order.error }} gives the cause, what to check and the raw text in a
fold-out; |failure_text the cause and what to check only, for a table cell or a title."""

from django import template

from certs import problems

register = template.Library()


@register.filter
def failure(stored, text):
    shown = problems.stored(stored, text)
    return shown.html() if shown else ""


@register.filter
def failure_text(stored, text):
    shown = problems.stored(stored, text)
    return shown.text if shown else ""
