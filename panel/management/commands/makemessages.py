"""`manage.py makemessages`, also extracting `_lazy("...")`: modules that need both gettext and
gettext_lazy import the lazy one under that name, which xgettext does not know by default."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_lazy"]
