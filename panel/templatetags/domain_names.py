"""Names as people read them: stored names are punycode (xn--fiq228c.example.test), pages show
them in Unicode (中文.example.test). {% load domain_names %}, then `name|unicode_domain` or
`names|unicode_domains|join:", "`."""

from django import template

from panel.toolkit import validation

register = template.Library()


@register.filter
def unicode_domain(name):
    return validation.unicode_domain(name or "")


@register.filter
def unicode_domains(names):
    return [validation.unicode_domain(name) for name in names or ()]
